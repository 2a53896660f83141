//! Flattened device trees for riscv-virt, generated with vm-fdt.
//!
//! The layout follows what QEMU's `virt` board describes, so the same guests find
//! the same devices at the same places.

use thiserror::Error;
use vm_fdt::FdtWriter;

/// Errors building a device tree.
#[derive(Debug, Error)]
#[error("cannot build the device tree: {0}")]
pub struct FdtError(#[from] vm_fdt::Error);

/// A memory-mapped device to describe.
#[derive(Clone, Debug)]
pub struct FdtDevice {
    /// Node name without the unit address, e.g. `serial`.
    pub name: &'static str,
    /// `compatible` strings, most specific first.
    pub compatible: &'static [&'static str],
    /// Base address.
    pub base: u64,
    /// Window size.
    pub size: u64,
    /// Extra u32 properties (e.g. `clock-frequency`).
    pub u32_props: Vec<(&'static str, u32)>,
    /// Extra string properties (e.g. a framebuffer's `format`).
    pub str_props: Vec<(&'static str, &'static str)>,
    /// PLIC interrupt source, if the device has one.
    pub irq: Option<u32>,
}

/// A PCIe host bridge with ECAM configuration space, as QEMU's `gpex`.
#[derive(Clone, Debug)]
pub struct FdtPciHost {
    /// ECAM window base and size (1 MiB per bus).
    pub ecam: (u64, u64),
    /// CPU address and size of the port-I/O window (PCI I/O address 0 upwards).
    pub pio: (u64, u64),
    /// The 32-bit memory window: CPU address = PCI address, and its size.
    pub mmio32: (u64, u64),
    /// The 64-bit prefetchable memory window, likewise.
    pub mmio64: (u64, u64),
    /// The PLIC source of INTA; INTB..INTD follow.
    pub intx_base: u32,
}

/// What the device tree describes.
#[derive(Clone, Debug)]
pub struct RiscvVirtFdt {
    /// Number of harts.
    pub harts: u32,
    /// RAM base and size.
    pub ram: (u64, u64),
    /// Timebase (mtime) frequency.
    pub timebase_hz: u32,
    /// Kernel command line.
    pub bootargs: String,
    /// Bytes for `/chosen/rng-seed`, which Linux mixes into its entropy pool at
    /// boot (as QEMU provides).
    pub rng_seed: Option<Vec<u8>>,
    /// Initial RAM disk location, `[start, end)`.
    pub initrd: Option<(u64, u64)>,
    /// PLIC base, size and number of sources.
    pub plic: (u64, u64, u32),
    /// Address of the console UART, for `stdout-path`.
    pub console: Option<u64>,
    /// CLINT base and size.
    pub clint: (u64, u64),
    /// Test/finisher device base and size (also exposed as syscon poweroff/reboot).
    pub finisher: Option<(u64, u64)>,
    /// Other devices on the SoC bus.
    pub devices: Vec<FdtDevice>,
    /// The PCIe host, if the machine has one.
    pub pci: Option<FdtPciHost>,
}

/// ISA string for the device tree: what the hart implements.
pub const RISCV_ISA: &str = "rv64imafdc_zicntr_zicsr_zifencei";
const ISA_EXTENSIONS: &[&str] = &["i", "m", "a", "f", "d", "c", "zicntr", "zicsr", "zifencei"];

impl RiscvVirtFdt {
    /// Serialises the tree to a DTB.
    pub fn build(&self) -> Result<Vec<u8>, FdtError> {
        let mut fdt = FdtWriter::new()?;
        let root = fdt.begin_node("")?;
        fdt.property_u32("#address-cells", 2)?;
        fdt.property_u32("#size-cells", 2)?;
        fdt.property_string("compatible", "riscv-virtio")?;
        fdt.property_string("model", "riscv-virtio,qemu")?;

        let chosen = fdt.begin_node("chosen")?;
        fdt.property_string("bootargs", &self.bootargs)?;
        if let Some(seed) = &self.rng_seed {
            fdt.property("rng-seed", seed)?;
        }
        if let Some((start, end)) = self.initrd {
            fdt.property_u64("linux,initrd-start", start)?;
            fdt.property_u64("linux,initrd-end", end)?;
        }
        if let Some(console) = self.console {
            fdt.property_string("stdout-path", &format!("/soc/serial@{console:x}"))?;
        }
        fdt.end_node(chosen)?;

        let (ram_base, ram_size) = self.ram;
        let memory = fdt.begin_node(&format!("memory@{ram_base:x}"))?;
        fdt.property_string("device_type", "memory")?;
        fdt.property_array_u64("reg", &[ram_base, ram_size])?;
        fdt.end_node(memory)?;

        // phandle 1.. for the per-hart interrupt controllers.
        let intc_phandle = |hart: u32| hart + 1;
        let cpus = fdt.begin_node("cpus")?;
        fdt.property_u32("#address-cells", 1)?;
        fdt.property_u32("#size-cells", 0)?;
        fdt.property_u32("timebase-frequency", self.timebase_hz)?;
        for hart in 0..self.harts {
            let cpu = fdt.begin_node(&format!("cpu@{hart}"))?;
            fdt.property_string("device_type", "cpu")?;
            fdt.property_u32("reg", hart)?;
            fdt.property_string("status", "okay")?;
            fdt.property_string("compatible", "riscv")?;
            fdt.property_string("riscv,isa", RISCV_ISA)?;
            fdt.property_string("riscv,isa-base", "rv64i")?;
            fdt.property_string_list(
                "riscv,isa-extensions",
                ISA_EXTENSIONS.iter().map(|s| (*s).to_owned()).collect(),
            )?;
            fdt.property_string("mmu-type", "riscv,sv57")?;
            let intc = fdt.begin_node("interrupt-controller")?;
            fdt.property_u32("#interrupt-cells", 1)?;
            fdt.property_null("interrupt-controller")?;
            fdt.property_string("compatible", "riscv,cpu-intc")?;
            fdt.property_u32("phandle", intc_phandle(hart))?;
            fdt.end_node(intc)?;
            fdt.end_node(cpu)?;
        }
        fdt.end_node(cpus)?;

        let soc = fdt.begin_node("soc")?;
        fdt.property_u32("#address-cells", 2)?;
        fdt.property_u32("#size-cells", 2)?;
        fdt.property_string("compatible", "simple-bus")?;
        fdt.property_null("ranges")?;

        let (clint_base, clint_size) = self.clint;
        let clint = fdt.begin_node(&format!("clint@{clint_base:x}"))?;
        fdt.property_string_list(
            "compatible",
            vec!["sifive,clint0".to_owned(), "riscv,clint0".to_owned()],
        )?;
        fdt.property_array_u64("reg", &[clint_base, clint_size])?;
        let mut extended = Vec::new();
        for hart in 0..self.harts {
            // Machine software (3) and machine timer (7) interrupts of each hart.
            extended.extend_from_slice(&[intc_phandle(hart), 3, intc_phandle(hart), 7]);
        }
        fdt.property_array_u32("interrupts-extended", &extended)?;
        fdt.end_node(clint)?;

        let plic_phandle = self.harts + 1;
        let (plic_base, plic_size, plic_sources) = self.plic;
        let plic = fdt.begin_node(&format!("plic@{plic_base:x}"))?;
        fdt.property_string_list(
            "compatible",
            vec!["sifive,plic-1.0.0".to_owned(), "riscv,plic0".to_owned()],
        )?;
        fdt.property_array_u64("reg", &[plic_base, plic_size])?;
        fdt.property_u32("#address-cells", 0)?;
        fdt.property_u32("#interrupt-cells", 1)?;
        fdt.property_null("interrupt-controller")?;
        fdt.property_u32("riscv,ndev", plic_sources)?;
        let mut contexts = Vec::new();
        for hart in 0..self.harts {
            // Context 2h: machine external (11); 2h+1: supervisor external (9).
            contexts.extend_from_slice(&[intc_phandle(hart), 11, intc_phandle(hart), 9]);
        }
        fdt.property_array_u32("interrupts-extended", &contexts)?;
        fdt.property_u32("phandle", plic_phandle)?;
        fdt.end_node(plic)?;

        for device in &self.devices {
            let node = fdt.begin_node(&format!("{}@{:x}", device.name, device.base))?;
            fdt.property_string_list(
                "compatible",
                device.compatible.iter().map(|s| (*s).to_owned()).collect(),
            )?;
            fdt.property_array_u64("reg", &[device.base, device.size])?;
            for (name, value) in &device.u32_props {
                fdt.property_u32(name, *value)?;
            }
            for (name, value) in &device.str_props {
                fdt.property_string(name, value)?;
            }
            if let Some(irq) = device.irq {
                fdt.property_u32("interrupts", irq)?;
                fdt.property_u32("interrupt-parent", plic_phandle)?;
            }
            fdt.end_node(node)?;
        }

        if let Some(pci) = &self.pci {
            write_pci_host(&mut fdt, pci, plic_phandle)?;
        }

        if let Some((base, size)) = self.finisher {
            let syscon_phandle = self.harts + 2;
            let test = fdt.begin_node(&format!("test@{base:x}"))?;
            fdt.property_string_list(
                "compatible",
                vec![
                    "sifive,test1".to_owned(),
                    "sifive,test0".to_owned(),
                    "syscon".to_owned(),
                ],
            )?;
            fdt.property_array_u64("reg", &[base, size])?;
            fdt.property_u32("phandle", syscon_phandle)?;
            fdt.end_node(test)?;
            for (name, value) in [("poweroff", 0x5555u32), ("reboot", 0x7777u32)] {
                let node = fdt.begin_node(name)?;
                fdt.property_string("compatible", &format!("syscon-{name}"))?;
                fdt.property_u32("regmap", syscon_phandle)?;
                fdt.property_u32("offset", 0)?;
                fdt.property_u32("value", value)?;
                fdt.end_node(node)?;
            }
        }
        fdt.end_node(soc)?;
        fdt.end_node(root)?;
        Ok(fdt.finish()?)
    }
}

/// PCI address-space codes in the first cell of a `ranges` child address.
const PCI_SPACE_IO: u32 = 0x0100_0000;
const PCI_SPACE_MEM32: u32 = 0x0200_0000;
const PCI_SPACE_MEM64_PREFETCH: u32 = 0x4300_0000;
/// Slots the interrupt map covers: the swizzle repeats every four slots, and
/// the map's mask keeps two slot bits, as QEMU's does.
const INTX_MAP_SLOTS: u32 = 4;

/// The `pci-host-ecam-generic` node, laid out as QEMU's virt board has it, with
/// the INTx swizzle (slot + pin - 1) mod 4 onto four PLIC sources.
fn write_pci_host(fdt: &mut FdtWriter, pci: &FdtPciHost, plic: u32) -> Result<(), FdtError> {
    let (ecam_base, ecam_size) = pci.ecam;
    let node = fdt.begin_node(&format!("pci@{ecam_base:x}"))?;
    fdt.property_string("compatible", "pci-host-ecam-generic")?;
    fdt.property_string("device_type", "pci")?;
    fdt.property_u32("#address-cells", 3)?;
    fdt.property_u32("#size-cells", 2)?;
    fdt.property_u32("#interrupt-cells", 1)?;
    fdt.property_u32("linux,pci-domain", 0)?;
    let buses = u32::try_from((ecam_size >> 20).max(1) - 1).unwrap_or(255);
    fdt.property_array_u32("bus-range", &[0, buses])?;
    fdt.property_null("dma-coherent")?;
    fdt.property_array_u64("reg", &[ecam_base, ecam_size])?;
    let hi = |v: u64| (v >> 32) as u32;
    let lo = |v: u64| v as u32;
    let (pio_cpu, pio_size) = pci.pio;
    let (m32, m32_size) = pci.mmio32;
    let (m64, m64_size) = pci.mmio64;
    let ranges = [
        [
            PCI_SPACE_IO,
            0,
            0,
            hi(pio_cpu),
            lo(pio_cpu),
            hi(pio_size),
            lo(pio_size),
        ],
        [
            PCI_SPACE_MEM32,
            hi(m32),
            lo(m32),
            hi(m32),
            lo(m32),
            hi(m32_size),
            lo(m32_size),
        ],
        [
            PCI_SPACE_MEM64_PREFETCH,
            hi(m64),
            lo(m64),
            hi(m64),
            lo(m64),
            hi(m64_size),
            lo(m64_size),
        ],
    ];
    fdt.property_array_u32("ranges", &ranges.concat())?;
    let mut map = Vec::new();
    for slot in 0..INTX_MAP_SLOTS {
        for pin in 1..=4 {
            let irq = pci.intx_base + (slot + pin - 1) % 4;
            map.extend_from_slice(&[slot << 11, 0, 0, pin, plic, irq]);
        }
    }
    fdt.property_array_u32("interrupt-map", &map)?;
    fdt.property_array_u32("interrupt-map-mask", &[0x1800, 0, 0, 7])?;
    fdt.end_node(node)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_valid_blob() {
        let tree = RiscvVirtFdt {
            harts: 2,
            ram: (0x8000_0000, 256 << 20),
            timebase_hz: 10_000_000,
            bootargs: "console=ttyS0".to_owned(),
            rng_seed: Some(vec![7; 32]),
            initrd: Some((0x8800_0000, 0x8810_0000)),
            plic: (0xc00_0000, 0x60_0000, 95),
            console: Some(0x1000_0000),
            clint: (0x200_0000, 0x1_0000),
            finisher: Some((0x10_0000, 0x1000)),
            devices: vec![FdtDevice {
                name: "serial",
                compatible: &["ns16550a"],
                base: 0x1000_0000,
                size: 0x100,
                u32_props: vec![("clock-frequency", 3_686_400)],
                str_props: vec![],
                irq: Some(10),
            }],
            pci: Some(FdtPciHost {
                ecam: (0x3000_0000, 0x1000_0000),
                pio: (0x300_0000, 0x1_0000),
                mmio32: (0x4000_0000, 0x1000_0000),
                mmio64: (0x4_0000_0000, 0x4_0000_0000),
                intx_base: 32,
            }),
        };
        let blob = tree.build().unwrap();
        assert_eq!(&blob[..4], &[0xd0, 0x0d, 0xfe, 0xed]);
        let total = u32::from_be_bytes(blob[4..8].try_into().unwrap()) as usize;
        assert_eq!(total, blob.len());
        let text = String::from_utf8_lossy(&blob);
        assert!(text.contains("ns16550a"));
        assert!(text.contains("/soc/serial@10000000"));
        assert!(text.contains("pci-host-ecam-generic"));
    }
}
