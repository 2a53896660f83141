//! QEMU's firmware configuration device (fw_cfg) in the port-I/O form of the
//! PC: how SeaBIOS and Linux's `qemu_fw_cfg` learn the machine's RAM size, CPU
//! count, kernel, command line, ACPI tables and boot order.
//!
//! Ports, from [`PORT_BASE`] (0x510):
//! - +0, selector: a 16-bit (or 8-bit) write selects an item and rewinds it;
//! - +1, data: each byte read returns the next byte of the selected item, and
//!   0 past its end or for an unknown item (+0 reads the same way, as in QEMU);
//! - +4 and +8, DMA address: two big-endian 32-bit writes, high half first;
//!   the low half starts a transfer described by the 16-byte
//!   `FWCfgDmaAccess` at that guest address (big-endian control, length and
//!   address). Reading them gives the signature "QEMU CFG".
//!
//! Items are byte vectors the machine sets before the guest runs: numeric
//! items by key ([`key`]; little-endian, as QEMU stores them) and named files
//! (`etc/e820`, `bootorder`, ...), listed in the file directory (key 0x19)
//! sorted by name, with keys from 0x20 in that order. The guest can write
//! only to files added with [`FwCfg::add_writable_file`], and only by DMA.

use emu_core::{Device, DeviceState, PioDevice, StateError};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use vm_memory::{Bytes, GuestAddress};

use crate::state::invalid;
use crate::virtio::GuestMemoryHandle;
use crate::virtio::memory::note_dma_write;

/// First port of the device on a PC.
pub const PORT_BASE: u16 = 0x510;
/// Ports from [`PORT_BASE`]: selector, data, two unused, then the DMA address.
pub const PORT_COUNT: u16 = 0x0c;
/// Bytes in a file name, terminating NUL included.
pub const FILE_NAME_SIZE: usize = 56;

const SELECTOR_PORT: u16 = 0;
const DATA_PORT: u16 = 1;
const DMA_HIGH_PORT: u16 = 4;
const DMA_LOW_PORT: u16 = 8;
/// Read from the DMA address ports, to tell a DMA-capable fw_cfg apart.
const DMA_SIGNATURE: [u8; 8] = *b"QEMU CFG";
/// The contents of item 0.
const SIGNATURE: [u8; 4] = *b"QEMU";
/// Feature bits of item 1: the port interface, and DMA.
const ID_TRADITIONAL: u32 = 0x01;
const ID_DMA: u32 = 0x02;
/// A selector bit asking for a writable item (QEMU ignores it on lookup).
const WRITE_CHANNEL: u16 = 0x4000;
/// A selector bit selecting the architecture's own items (0x8000 and up).
const ARCH_LOCAL: u16 = 0x8000;
/// Files get the keys from here on, in name order.
const FILE_FIRST: u16 = 0x20;
const MAX_FILES: usize = (WRITE_CHANNEL - FILE_FIRST) as usize;
/// A file directory entry: size, select, reserved, name.
const DIR_ENTRY_SIZE: usize = 8 + FILE_NAME_SIZE;

/// The 16-byte DMA access structure in guest memory.
const DMA_ACCESS_SIZE: usize = 16;
const DMA_CTL_ERROR: u32 = 0x01;
const DMA_CTL_READ: u32 = 0x02;
const DMA_CTL_SKIP: u32 = 0x04;
const DMA_CTL_SELECT: u32 = 0x08;
const DMA_CTL_WRITE: u32 = 0x10;
/// The selector a DMA access with SELECT picks sits in the control word's top half.
const DMA_CTL_SELECTOR_SHIFT: u32 = 16;
/// Zeros written per guest-memory access when a read runs past an item.
const ZERO_CHUNK: usize = 4096;

/// Item keys (selectors). Numeric items are little-endian, of the width given.
pub mod key {
    /// "QEMU" (generated).
    pub const SIGNATURE: u16 = 0x00;
    /// Feature bits, 32 bits (generated).
    pub const ID: u16 = 0x01;
    /// The machine's UUID, 16 bytes.
    pub const UUID: u16 = 0x02;
    /// RAM size in bytes, 64 bits.
    pub const RAM_SIZE: u16 = 0x03;
    /// No graphical display, 16 bits.
    pub const NOGRAPHIC: u16 = 0x04;
    /// CPUs present at boot, 16 bits.
    pub const NB_CPUS: u16 = 0x05;
    /// Machine id, 32 bits.
    pub const MACHINE_ID: u16 = 0x06;
    /// Where the kernel is loaded, 32 bits.
    pub const KERNEL_ADDR: u16 = 0x07;
    /// Kernel size, 32 bits.
    pub const KERNEL_SIZE: u16 = 0x08;
    /// Kernel command line address (legacy), 32 bits.
    pub const KERNEL_CMDLINE: u16 = 0x09;
    /// Where the initrd is loaded, 32 bits.
    pub const INITRD_ADDR: u16 = 0x0a;
    /// Initrd size, 32 bits.
    pub const INITRD_SIZE: u16 = 0x0b;
    /// Boot device, 16 bits.
    pub const BOOT_DEVICE: u16 = 0x0c;
    /// NUMA topology, 64-bit words.
    pub const NUMA: u16 = 0x0d;
    /// Whether the firmware shows a boot menu, 16 bits.
    pub const BOOT_MENU: u16 = 0x0e;
    /// Most CPUs the machine can have, 16 bits.
    pub const MAX_CPUS: u16 = 0x0f;
    /// Kernel entry point, 32 bits.
    pub const KERNEL_ENTRY: u16 = 0x10;
    /// The kernel image (bytes).
    pub const KERNEL_DATA: u16 = 0x11;
    /// The initrd image (bytes).
    pub const INITRD_DATA: u16 = 0x12;
    /// Where the command line goes, 32 bits.
    pub const CMDLINE_ADDR: u16 = 0x13;
    /// Command line size with its NUL, 32 bits.
    pub const CMDLINE_SIZE: u16 = 0x14;
    /// The command line, NUL-terminated (bytes).
    pub const CMDLINE_DATA: u16 = 0x15;
    /// Where the bzImage setup code goes, 32 bits.
    pub const SETUP_ADDR: u16 = 0x16;
    /// Setup code size, 32 bits.
    pub const SETUP_SIZE: u16 = 0x17;
    /// The bzImage setup code (bytes).
    pub const SETUP_DATA: u16 = 0x18;
    /// The file directory (generated).
    pub const FILE_DIR: u16 = 0x19;
    /// x86: ACPI tables (legacy interface).
    pub const X86_ACPI_TABLES: u16 = 0x8000;
    /// x86: SMBIOS entries (legacy interface).
    pub const X86_SMBIOS_ENTRIES: u16 = 0x8001;
    /// x86: whether IRQ 0 is overridden to GSI 2, 8 bits.
    pub const X86_IRQ0_OVERRIDE: u16 = 0x8002;
    /// x86: the e820 map, 32-bit count then 20-byte entries (legacy; `etc/e820` replaces it).
    pub const X86_E820_TABLE: u16 = 0x8003;
    /// x86: HPET description.
    pub const X86_HPET: u16 = 0x8004;
}

/// Why an item or file cannot be added.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum FwCfgError {
    /// The key is generated by the device or belongs to the files.
    #[error("fw_cfg key {0:#06x} is reserved (generated items, files, or the write channel)")]
    ReservedKey(u16),
    /// The name is empty, has a NUL, or does not fit 55 bytes.
    #[error("fw_cfg file name {0:?} is empty, contains NUL, or is longer than 55 bytes")]
    BadName(String),
    /// A file of that name exists.
    #[error("fw_cfg file {0:?} already exists")]
    DuplicateFile(String),
    /// No key left for another file.
    #[error("fw_cfg has no key left for file {0:?}")]
    TooManyFiles(String),
    /// Items hold at most 4 GiB - 1 bytes (sizes are 32-bit).
    #[error("fw_cfg item of {0} bytes is larger than 4 GiB")]
    TooLarge(usize),
}

/// One item's contents.
#[derive(Clone, Debug, Default)]
struct Entry {
    data: Vec<u8>,
    /// The guest may write it by DMA.
    writable: bool,
}

/// A writable file's contents in a saved state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrittenFile {
    /// The file name.
    pub name: String,
    /// Its contents.
    #[serde(with = "crate::state::hex_bytes")]
    pub data: Vec<u8>,
}

/// The device's guest-visible state. Items the machine set are configuration,
/// rebuilt by the machine, and stay out of it; the contents of writable files
/// (the guest may have changed them) are in it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FwCfgState {
    /// The selector last written (or picked by a DMA access).
    pub selector: u16,
    /// Offset of the next byte in the selected item.
    pub offset: u32,
    /// High half of the DMA address, waiting for the low half.
    pub dma_high: u32,
    /// Writable files, by name.
    pub written: Vec<WrittenFile>,
}

/// What a DMA access does with the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DmaOp {
    Read,
    Write,
    Skip,
}

/// The fw_cfg device.
#[derive(Debug)]
pub struct FwCfg {
    selector: u16,
    offset: u32,
    dma_high: u32,
    /// Items by key (arch-local ones with their 0x8000 bit), files apart.
    items: std::collections::BTreeMap<u16, Entry>,
    /// Files sorted by name; file `i` has key `FILE_FIRST + i`.
    files: Vec<(String, Entry)>,
    mem: Option<GuestMemoryHandle>,
}

impl FwCfg {
    /// A device with only the generated items (signature, ID, an empty file
    /// directory). With `mem`, it does DMA into that memory and says so in
    /// its ID item; without, DMA writes are ignored.
    pub fn new(mem: Option<GuestMemoryHandle>) -> FwCfg {
        let id = ID_TRADITIONAL | if mem.is_some() { ID_DMA } else { 0 };
        let mut fw_cfg = FwCfg {
            selector: key::SIGNATURE,
            offset: 0,
            dma_high: 0,
            items: Default::default(),
            files: Vec::new(),
            mem,
        };
        fw_cfg.put(key::SIGNATURE, SIGNATURE.to_vec(), false);
        fw_cfg.put(key::ID, id.to_le_bytes().to_vec(), false);
        fw_cfg.rebuild_directory();
        fw_cfg
    }

    fn put(&mut self, key: u16, data: Vec<u8>, writable: bool) {
        self.items.insert(key, Entry { data, writable });
    }

    /// Sets (or replaces) the item at `key` to `data`. Keys the device
    /// generates (0x00, 0x01, 0x19), file keys (0x20-0x3fff) and keys with the
    /// write-channel bit are refused.
    pub fn set_item(&mut self, key: u16, data: Vec<u8>) -> Result<(), FwCfgError> {
        let generated = matches!(key, key::SIGNATURE | key::ID | key::FILE_DIR);
        let file_range = (FILE_FIRST..WRITE_CHANNEL).contains(&key);
        if generated || file_range || key & WRITE_CHANNEL != 0 {
            return Err(FwCfgError::ReservedKey(key));
        }
        check_size(&data)?;
        self.put(key, data, false);
        Ok(())
    }

    /// Sets a 16-bit item, little-endian.
    pub fn set_u16(&mut self, key: u16, value: u16) -> Result<(), FwCfgError> {
        self.set_item(key, value.to_le_bytes().to_vec())
    }

    /// Sets a 32-bit item, little-endian.
    pub fn set_u32(&mut self, key: u16, value: u32) -> Result<(), FwCfgError> {
        self.set_item(key, value.to_le_bytes().to_vec())
    }

    /// Sets a 64-bit item, little-endian.
    pub fn set_u64(&mut self, key: u16, value: u64) -> Result<(), FwCfgError> {
        self.set_item(key, value.to_le_bytes().to_vec())
    }

    /// Adds a read-only file. Files after it in name order move up one key,
    /// as in QEMU; [`FwCfg::file_key`] gives a file's key once all are added.
    pub fn add_file(&mut self, name: &str, data: Vec<u8>) -> Result<(), FwCfgError> {
        self.insert_file(name, data, false)
    }

    /// Adds a file the guest may overwrite by DMA (within its size), like
    /// QEMU's writable files; the machine reads the result with [`FwCfg::file`].
    pub fn add_writable_file(&mut self, name: &str, data: Vec<u8>) -> Result<(), FwCfgError> {
        self.insert_file(name, data, true)
    }

    fn insert_file(&mut self, name: &str, data: Vec<u8>, writable: bool) -> Result<(), FwCfgError> {
        if name.is_empty() || name.len() >= FILE_NAME_SIZE || name.contains('\0') {
            return Err(FwCfgError::BadName(name.to_owned()));
        }
        check_size(&data)?;
        if self.files.len() >= MAX_FILES {
            return Err(FwCfgError::TooManyFiles(name.to_owned()));
        }
        // Byte order of the names, as QEMU's strcmp sorts them.
        let at = match self
            .files
            .binary_search_by(|(other, _)| other.as_bytes().cmp(name.as_bytes()))
        {
            Ok(_) => return Err(FwCfgError::DuplicateFile(name.to_owned())),
            Err(at) => at,
        };
        self.files
            .insert(at, (name.to_owned(), Entry { data, writable }));
        self.rebuild_directory();
        Ok(())
    }

    /// The key of file `name`.
    pub fn file_key(&self, name: &str) -> Option<u16> {
        let index = self.files.iter().position(|(n, _)| n == name)?;
        Some(FILE_FIRST + index as u16)
    }

    /// The contents of file `name`.
    pub fn file(&self, name: &str) -> Option<&[u8]> {
        let (_, entry) = self.files.iter().find(|(n, _)| n == name)?;
        Some(&entry.data)
    }

    /// The contents of the item at `key` (files included).
    pub fn item(&self, key: u16) -> Option<&[u8]> {
        self.entry(key).map(|e| e.data.as_slice())
    }

    /// The directory: a big-endian count, then per file its big-endian size
    /// and key, two reserved bytes and the NUL-padded name.
    fn rebuild_directory(&mut self) {
        let mut dir = Vec::with_capacity(4 + DIR_ENTRY_SIZE * self.files.len());
        dir.extend_from_slice(&(self.files.len() as u32).to_be_bytes());
        for (index, (name, entry)) in self.files.iter().enumerate() {
            dir.extend_from_slice(&(entry.data.len() as u32).to_be_bytes());
            dir.extend_from_slice(&(FILE_FIRST + index as u16).to_be_bytes());
            dir.extend_from_slice(&[0; 2]);
            let mut field = [0u8; FILE_NAME_SIZE];
            field[..name.len()].copy_from_slice(name.as_bytes());
            dir.extend_from_slice(&field);
        }
        self.put(key::FILE_DIR, dir, false);
    }

    /// The item a selector picks; the write-channel bit does not matter.
    fn entry(&self, selector: u16) -> Option<&Entry> {
        let key = selector & !WRITE_CHANNEL;
        match key.checked_sub(FILE_FIRST) {
            Some(index) if key & ARCH_LOCAL == 0 => {
                self.files.get(usize::from(index)).map(|f| &f.1)
            }
            _ => self.items.get(&key),
        }
    }

    fn entry_mut(&mut self, selector: u16) -> Option<&mut Entry> {
        let key = selector & !WRITE_CHANNEL;
        match key.checked_sub(FILE_FIRST) {
            Some(index) if key & ARCH_LOCAL == 0 => {
                self.files.get_mut(usize::from(index)).map(|f| &mut f.1)
            }
            _ => self.items.get_mut(&key),
        }
    }

    fn select(&mut self, selector: u16) {
        self.selector = selector;
        self.offset = 0;
    }

    /// Bytes of the selected item from the current offset on.
    fn remaining(&self) -> &[u8] {
        self.entry(self.selector)
            .and_then(|e| e.data.get(self.offset as usize..))
            .unwrap_or(&[])
    }

    fn read_data(&mut self) -> u8 {
        match self.remaining().first() {
            Some(&byte) => {
                self.offset += 1;
                byte
            }
            None => 0,
        }
    }

    /// Runs the DMA access at guest address `access`, then writes its status
    /// into the access's control word: 0 when done, ERROR when a guest
    /// address was bad or a write was refused. An access structure the
    /// device cannot read gets ERROR, if its control word can be written.
    fn dma(&mut self, access: u64) {
        let Some(mem) = self.mem.clone() else {
            return;
        };
        let mut raw = [0u8; DMA_ACCESS_SIZE];
        let status = if mem
            .memory()
            .read_slice(&mut raw, GuestAddress(access))
            .is_ok()
        {
            let control = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
            let length = u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]);
            let mut address = [0u8; 8];
            address.copy_from_slice(&raw[8..16]);
            self.transfer(&mem, control, length, u64::from_be_bytes(address))
        } else {
            DMA_CTL_ERROR
        };
        // Nowhere else to report a control word that cannot be written.
        if mem
            .memory()
            .write_slice(&status.to_be_bytes(), GuestAddress(access))
            .is_ok()
        {
            note_dma_write(mem.memory(), access, 4);
        }
    }

    /// The transfer an access asks for; returns its status.
    fn transfer(
        &mut self,
        mem: &GuestMemoryHandle,
        control: u32,
        length: u32,
        address: u64,
    ) -> u32 {
        if control & DMA_CTL_SELECT != 0 {
            self.select((control >> DMA_CTL_SELECTOR_SHIFT) as u16);
        }
        // One operation per access, READ first, as QEMU decides.
        let op = if control & DMA_CTL_READ != 0 {
            DmaOp::Read
        } else if control & DMA_CTL_WRITE != 0 {
            DmaOp::Write
        } else if control & DMA_CTL_SKIP != 0 {
            DmaOp::Skip
        } else {
            return 0;
        };
        let guest = mem.memory();
        let mut address = address;
        let mut length = length;
        while length > 0 {
            let available = self.remaining().len().min(length as usize);
            if available == 0 {
                // Past the end: reads give zeros, skips nothing, writes fail;
                // the offset stays where the item ends.
                match op {
                    DmaOp::Read => {
                        if !write_zeros(mem, address, length as usize) {
                            return DMA_CTL_ERROR;
                        }
                    }
                    DmaOp::Write => return DMA_CTL_ERROR,
                    DmaOp::Skip => {}
                }
                return 0;
            }
            let n = available as u32;
            let at = GuestAddress(address);
            let ok = match op {
                DmaOp::Read => {
                    let bytes = &self.remaining()[..available];
                    let ok = guest.write_slice(bytes, at).is_ok();
                    note_dma_write(guest, address, available);
                    ok
                }
                DmaOp::Write => {
                    // A write must fit the item whole, into a writable one.
                    let offset = self.offset as usize;
                    match self.entry_mut(self.selector) {
                        Some(entry) if entry.writable && n == length => guest
                            .read_slice(&mut entry.data[offset..offset + available], at)
                            .is_ok(),
                        _ => false,
                    }
                }
                DmaOp::Skip => true,
            };
            // The offset moves on even when the guest address was bad, as in QEMU.
            self.offset += n;
            if !ok {
                return DMA_CTL_ERROR;
            }
            address = address.wrapping_add(u64::from(n));
            length -= n;
        }
        0
    }

    fn writable_files(&self) -> Vec<WrittenFile> {
        self.files
            .iter()
            .filter(|(_, e)| e.writable)
            .map(|(name, e)| WrittenFile {
                name: name.clone(),
                data: e.data.clone(),
            })
            .collect()
    }
}

fn check_size(data: &[u8]) -> Result<(), FwCfgError> {
    if u32::try_from(data.len()).is_err() {
        return Err(FwCfgError::TooLarge(data.len()));
    }
    Ok(())
}

/// Fills `len` bytes of guest memory at `address` with zeros; false if any
/// of them is not RAM.
fn write_zeros(mem: &GuestMemoryHandle, address: u64, len: usize) -> bool {
    let zeros = [0u8; ZERO_CHUNK];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(ZERO_CHUNK);
        let at = address.wrapping_add(done as u64);
        if mem
            .memory()
            .write_slice(&zeros[..n], GuestAddress(at))
            .is_err()
        {
            return false;
        }
        note_dma_write(mem.memory(), at, n);
        done += n;
    }
    true
}

/// Model name in saved states.
const KIND: &str = "fw_cfg";
/// Layout version of the saved [`FwCfgState`].
const VERSION: u32 = 1;

impl Device for FwCfg {
    /// Selects the signature, rewound, and forgets a half-written DMA address,
    /// as QEMU's reset does. Writable files keep what the guest wrote.
    fn reset(&mut self) {
        self.select(key::SIGNATURE);
        self.dma_high = 0;
    }

    fn save_state(&self) -> DeviceState {
        let state = FwCfgState {
            selector: self.selector,
            offset: self.offset,
            dma_high: self.dma_high,
            written: self.writable_files(),
        };
        DeviceState::encode(KIND, VERSION, &state)
    }

    /// The machine must have added the same writable files (same names and
    /// sizes) before restoring.
    fn restore_state(&mut self, state: &DeviceState) -> Result<(), StateError> {
        let state: FwCfgState = state.decode(KIND, VERSION)?;
        for file in &state.written {
            let fits = self
                .files
                .iter()
                .any(|(n, e)| *n == file.name && e.writable && e.data.len() == file.data.len());
            if !fits {
                return Err(invalid(
                    KIND,
                    format!(
                        "no writable file {:?} of {} bytes",
                        file.name,
                        file.data.len()
                    ),
                ));
            }
        }
        for file in state.written {
            if let Some((_, entry)) = self.files.iter_mut().find(|(n, _)| *n == file.name) {
                entry.data = file.data;
            }
        }
        self.selector = state.selector;
        self.offset = state.offset;
        self.dma_high = state.dma_high;
        Ok(())
    }
}

impl PioDevice for FwCfg {
    /// Byte reads at the selector or data port read the item; 32-bit reads of
    /// the DMA ports read "QEMU CFG". Everything else floats (all ones).
    fn read(&mut self, offset: u16, size: u8) -> u32 {
        match (offset, size) {
            (SELECTOR_PORT | DATA_PORT, 1) => u32::from(self.read_data()),
            (DMA_HIGH_PORT | DMA_LOW_PORT, 4) => {
                let at = usize::from(offset - DMA_HIGH_PORT);
                // Big-endian register: the guest sees the bytes in order.
                let bytes = [0, 1, 2, 3].map(|i| DMA_SIGNATURE[at + i]);
                u32::from_le_bytes(bytes)
            }
            _ if size >= 4 => u32::MAX,
            _ => (1 << (8 * u32::from(size))) - 1,
        }
    }

    /// Selector writes of 8 or 16 bits select; data-port writes are ignored
    /// (QEMU dropped them); the DMA ports take 32-bit big-endian halves.
    fn write(&mut self, offset: u16, size: u8, value: u32) {
        match (offset, size) {
            (SELECTOR_PORT, 1) => self.select(u16::from(value as u8)),
            (SELECTOR_PORT, 2) => self.select(value as u16),
            (DMA_HIGH_PORT, 4) if self.mem.is_some() => self.dma_high = value.swap_bytes(),
            (DMA_LOW_PORT, 4) if self.mem.is_some() => {
                let access = u64::from(self.dma_high) << 32 | u64::from(value.swap_bytes());
                // The high half is used once: a later access with only a low
                // half written lies below 4 GiB.
                self.dma_high = 0;
                self.dma(access);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
