//! Ogg pages (RFC 3533): CRC, a page writer with reused buffers, and a page walker that
//! finds where the last complete, checksum-valid page ends.

use std::io::{self, Read, Seek, SeekFrom, Write};

use super::Malformed;

const fn crc_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut r = (i as u32) << 24;
        let mut k = 0;
        while k < 8 {
            r = if r & 0x8000_0000 != 0 {
                (r << 1) ^ 0x04C1_1DB7
            } else {
                r << 1
            };
            k += 1;
        }
        t[i] = r;
        i += 1;
    }
    t
}

static CRC: [u32; 256] = crc_table();

/// Continues the Ogg CRC-32 (polynomial 0x04C11DB7, no reflection, initial value 0).
pub fn crc_update(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc = (crc << 8) ^ CRC[((crc >> 24) as u8 ^ b) as usize];
    }
    crc
}

/// Header flag: continued packet.
pub const FLAG_CONTINUED: u8 = 0x01;
/// Header flag: first page of the stream.
pub const FLAG_BOS: u8 = 0x02;
/// Header flag: last page of the stream.
pub const FLAG_EOS: u8 = 0x04;

/// Writes one logical stream's packets into pages; a page is emitted when the next packet
/// would not fit in its 255 lacing values, or on [`PageWriter::flush_page`].
pub struct PageWriter {
    serial: u32,
    seq: u32,
    first: bool,
    lacing: Vec<u8>,
    body: Vec<u8>,
    granule: u64,
    page: Vec<u8>,
}

impl PageWriter {
    /// A writer for the stream with this serial number.
    pub fn new(serial: u32) -> Self {
        Self {
            serial,
            seq: 0,
            first: true,
            lacing: Vec::with_capacity(255),
            body: Vec::with_capacity(16 * 1024),
            granule: 0,
            page: Vec::with_capacity(16 * 1024 + 300),
        }
    }

    /// Whether packets are waiting in the current page.
    pub fn has_pending(&self) -> bool {
        !self.lacing.is_empty()
    }

    /// Adds a whole packet ending at `granule`; packets up to 64770 bytes only (larger ones
    /// would need continuation pages, which callmux never produces).
    pub fn add_packet(
        &mut self,
        packet: &[u8],
        granule: u64,
        out: &mut impl Write,
    ) -> io::Result<()> {
        let segments = packet.len() / 255 + 1;
        if segments > 254 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "Ogg packet too large",
            ));
        }
        if self.lacing.len() + segments > 255 {
            self.flush_page(out, false)?;
        }
        self.lacing.extend(std::iter::repeat_n(255u8, segments - 1));
        self.lacing.push((packet.len() % 255) as u8);
        self.body.extend_from_slice(packet);
        self.granule = granule;
        Ok(())
    }

    /// Writes the current page (if it holds packets, or if `eos` asks for the last page).
    pub fn flush_page(&mut self, out: &mut impl Write, eos: bool) -> io::Result<()> {
        if self.lacing.is_empty() && !eos {
            return Ok(());
        }
        let mut flags = 0;
        if self.first {
            flags |= FLAG_BOS;
        }
        if eos {
            flags |= FLAG_EOS;
        }
        self.page.clear();
        self.page.extend_from_slice(b"OggS\0");
        self.page.push(flags);
        self.page.extend_from_slice(&self.granule.to_le_bytes());
        self.page.extend_from_slice(&self.serial.to_le_bytes());
        self.page.extend_from_slice(&self.seq.to_le_bytes());
        self.page.extend_from_slice(&[0; 4]);
        self.page.push(self.lacing.len() as u8);
        self.page.extend_from_slice(&self.lacing);
        self.page.extend_from_slice(&self.body);
        let crc = crc_update(0, &self.page);
        self.page[22..26].copy_from_slice(&crc.to_le_bytes());
        out.write_all(&self.page)?;
        self.first = false;
        self.seq = self.seq.wrapping_add(1);
        self.lacing.clear();
        self.body.clear();
        Ok(())
    }
}

impl PageWriter {
    /// Ends the stream: the pending page is written with the EOS flag or, when nothing is
    /// pending, the last page written is rewritten in place with the flag set.
    pub fn end_stream<W: Write + Seek>(&mut self, out: &mut W) -> io::Result<()> {
        if self.has_pending() || self.page.is_empty() {
            return self.flush_page(out, true);
        }
        mark_eos(&mut self.page).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        out.seek(SeekFrom::Current(-(self.page.len() as i64)))?;
        out.write_all(&self.page)?;
        out.seek(SeekFrom::End(0))?;
        Ok(())
    }
}

/// One page found by [`scan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PageInfo {
    /// Byte offset of the page.
    pub offset: u64,
    /// Bytes of the page, header included.
    pub len: usize,
    /// Header flags.
    pub flags: u8,
    /// Granule position (`u64::MAX` when no packet ends on the page).
    pub granule: u64,
}

/// Result of walking an Ogg stream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OggScan {
    /// Valid pages found.
    pub pages: u64,
    /// Offset just after the last valid page.
    pub end: u64,
    /// The last valid page.
    pub last: PageInfo,
    /// Highest granule position of a valid page that has one.
    pub last_granule: Option<u64>,
    /// Body of the first page (for Opus: the OpusHead packet).
    pub first_body: Vec<u8>,
}

/// Walks pages of one logical stream until the data ends, is cut, or fails its checksum.
pub fn scan(r: &mut impl Read) -> io::Result<OggScan> {
    let mut s = OggScan::default();
    let mut header = [0u8; 27];
    let mut rest = vec![0u8; 255 + 255 * 255];
    let mut serial = None;
    loop {
        if read_exact_or_eof(r, &mut header)? {
            break;
        }
        if &header[0..4] != b"OggS" || header[4] != 0 {
            break;
        }
        let page_serial = u32::from_le_bytes([header[14], header[15], header[16], header[17]]);
        if *serial.get_or_insert(page_serial) != page_serial {
            break;
        }
        let nseg = usize::from(header[26]);
        if read_exact_or_eof(r, &mut rest[..nseg])? {
            break;
        }
        let body_len: usize = rest[..nseg].iter().map(|&l| usize::from(l)).sum();
        if read_exact_or_eof(r, &mut rest[nseg..nseg + body_len])? {
            break;
        }
        let stored = u32::from_le_bytes([header[22], header[23], header[24], header[25]]);
        let mut zeroed = header;
        zeroed[22..26].fill(0);
        let crc = crc_update(crc_update(0, &zeroed), &rest[..nseg + body_len]);
        if crc != stored {
            break;
        }
        let granule = u64::from_le_bytes([
            header[6], header[7], header[8], header[9], header[10], header[11], header[12],
            header[13],
        ]);
        if s.pages == 0 {
            s.first_body = rest[nseg..nseg + body_len].to_vec();
        }
        let len = 27 + nseg + body_len;
        s.last = PageInfo {
            offset: s.end,
            len,
            flags: header[5],
            granule,
        };
        if granule != u64::MAX {
            s.last_granule = Some(granule);
        }
        s.pages += 1;
        s.end += len as u64;
    }
    Ok(s)
}

/// Reads exactly `buf.len()` bytes; `Ok(true)` if the data ended first.
fn read_exact_or_eof(r: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => return Ok(true),
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

/// Reads the packets of one logical Ogg stream in order (continued packets joined). Stops
/// at the end of the data, at a cut page, or at a page that fails its checksum.
pub struct PacketReader<R: Read> {
    r: R,
    header: [u8; 27],
    lacing: [u8; 255],
    body: Vec<u8>,
    seg: usize,
    nseg: usize,
    body_at: usize,
    granule: u64,
    partial: Vec<u8>,
    serial: Option<u32>,
    done: bool,
}

impl<R: Read> PacketReader<R> {
    /// A reader over `r`.
    pub fn new(r: R) -> Self {
        Self {
            r,
            header: [0; 27],
            lacing: [0; 255],
            body: Vec::new(),
            seg: 0,
            nseg: 0,
            body_at: 0,
            granule: 0,
            partial: Vec::new(),
            serial: None,
            done: false,
        }
    }

    fn next_page(&mut self) -> io::Result<bool> {
        if self.done || read_exact_or_eof(&mut self.r, &mut self.header)? {
            return Ok(false);
        }
        if &self.header[0..4] != b"OggS" || self.header[4] != 0 {
            return Ok(false);
        }
        let serial = u32::from_le_bytes([
            self.header[14],
            self.header[15],
            self.header[16],
            self.header[17],
        ]);
        if *self.serial.get_or_insert(serial) != serial {
            return Ok(false);
        }
        self.nseg = usize::from(self.header[26]);
        if read_exact_or_eof(&mut self.r, &mut self.lacing[..self.nseg])? {
            return Ok(false);
        }
        let len: usize = self.lacing[..self.nseg]
            .iter()
            .map(|&l| usize::from(l))
            .sum();
        self.body.resize(len, 0);
        if read_exact_or_eof(&mut self.r, &mut self.body)? {
            return Ok(false);
        }
        let stored = u32::from_le_bytes([
            self.header[22],
            self.header[23],
            self.header[24],
            self.header[25],
        ]);
        let mut zeroed = self.header;
        zeroed[22..26].fill(0);
        let crc = crc_update(
            crc_update(crc_update(0, &zeroed), &self.lacing[..self.nseg]),
            &self.body,
        );
        if crc != stored {
            return Ok(false);
        }
        self.granule = u64::from_le_bytes([
            self.header[6],
            self.header[7],
            self.header[8],
            self.header[9],
            self.header[10],
            self.header[11],
            self.header[12],
            self.header[13],
        ]);
        self.seg = 0;
        self.body_at = 0;
        Ok(true)
    }

    /// The next whole packet into `out` (cleared first) with the granule position of the
    /// page it ends on; `Ok(false)` at the end.
    pub fn next_packet(&mut self, out: &mut Vec<u8>) -> io::Result<Option<u64>> {
        loop {
            while self.seg < self.nseg {
                let l = usize::from(self.lacing[self.seg]);
                self.seg += 1;
                self.partial
                    .extend_from_slice(&self.body[self.body_at..self.body_at + l]);
                self.body_at += l;
                if l < 255 {
                    out.clear();
                    out.append(&mut self.partial);
                    return Ok(Some(self.granule));
                }
                if self.partial.len() > 1 << 20 {
                    self.done = true;
                    return Ok(None);
                }
            }
            if !self.next_page()? {
                self.done = true;
                return Ok(None);
            }
        }
    }
}

/// Sets the EOS flag on a complete page held in `page` and fixes its checksum.
pub fn mark_eos(page: &mut [u8]) -> Result<(), Malformed> {
    if page.len() < 27 || &page[0..4] != b"OggS" {
        return Err(Malformed("not an Ogg page"));
    }
    page[5] |= FLAG_EOS;
    page[22..26].fill(0);
    let crc = crc_update(0, page);
    page[22..26].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_of_known_string() {
        // CRC-32/MPEG-2 variant without final xor and init 0 ("CRC-32/BZIP2" unreflected,
        // init 0): check value for "123456789" is 0x89A1897F.
        assert_eq!(crc_update(0, b"123456789"), 0x89A1_897F);
    }

    #[test]
    fn written_pages_scan_back_and_a_cut_page_is_dropped() {
        let mut out = Vec::new();
        let mut w = PageWriter::new(42);
        w.add_packet(b"OpusHead-ish", 0, &mut out).unwrap();
        w.flush_page(&mut out, false).unwrap();
        for i in 0..600u64 {
            w.add_packet(&[i as u8; 100], i * 960, &mut out).unwrap();
        }
        w.flush_page(&mut out, true).unwrap();
        let s = scan(&mut &out[..]).unwrap();
        assert_eq!(s.end, out.len() as u64);
        assert!(s.pages >= 4);
        assert_eq!(s.last_granule, Some(599 * 960));
        assert_eq!(s.first_body, b"OpusHead-ish");
        assert_ne!(s.last.flags & FLAG_EOS, 0);
        let cut = &out[..out.len() - 10];
        let s2 = scan(&mut &cut[..]).unwrap();
        assert_eq!(s2.pages, s.pages - 1);
        let mut corrupt = out.clone();
        let n = corrupt.len();
        corrupt[n - 1] ^= 1;
        assert_eq!(scan(&mut &corrupt[..]).unwrap().pages, s.pages - 1);
    }

    #[test]
    fn mark_eos_keeps_the_page_valid() {
        let mut out = Vec::new();
        let mut w = PageWriter::new(1);
        w.add_packet(b"abc", 5, &mut out).unwrap();
        w.flush_page(&mut out, false).unwrap();
        mark_eos(&mut out).unwrap();
        let s = scan(&mut &out[..]).unwrap();
        assert_eq!(s.pages, 1);
        assert_ne!(s.last.flags & FLAG_EOS, 0);
        assert!(mark_eos(&mut [0u8; 5]).is_err());
    }
}
