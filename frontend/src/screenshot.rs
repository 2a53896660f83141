//! Headless screenshots: the guest's display as a PNG file.

use std::io::BufWriter;
use std::path::Path;

use devices::virtio::Display;

/// Writes `display` as an 8-bit RGB PNG to `path`.
pub fn write_png(path: &Path, display: &Display) -> Result<(), String> {
    if display.width == 0 || display.height == 0 {
        return Err("the guest shows nothing to capture".to_owned());
    }
    let file = std::fs::File::create(path)
        .map_err(|e| format!("cannot write screenshot {}: {e}", path.display()))?;
    let mut encoder = png::Encoder::new(BufWriter::new(file), display.width, display.height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let rgb: Vec<u8> = display
        .pixels
        .iter()
        .flat_map(|p| [(p >> 16) as u8, (p >> 8) as u8, *p as u8])
        .collect();
    encoder
        .write_header()
        .and_then(|mut writer| writer.write_image_data(&rgb))
        .map_err(|e| format!("cannot write screenshot {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_png_holds_the_pixels() {
        let path = std::env::temp_dir().join(format!("turing-shot-{}.png", std::process::id()));
        let display = Display {
            width: 2,
            height: 1,
            pixels: vec![0x00ff_0000, 0x0000_80ff],
            frames: 1,
        };
        write_png(&path, &display).unwrap();
        let decoder =
            png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (2, 1));
        assert_eq!(&buf[..6], &[255, 0, 0, 0, 128, 255]);
        let _ = std::fs::remove_file(&path);
        assert!(write_png(&path, &Display::default()).is_err());
    }
}
