//! The temp file a blob is written into, through a buffer of our own.
//!
//! A large blob that arrives whole from elsewhere (a pull's layers) can be
//! written around the page cache (`O_DIRECT`): its bytes go from our buffer
//! to the disk, which the blob's fsync waits for anyway. Through the page
//! cache, every byte is first copied into freshly allocated kernel pages;
//! on the virtual machines CI runs on, touching pages the host has taken
//! back costs more than the disk write itself (a 400 MB `dd` took 0.2 to
//! 3.6 s buffered, 0.16 to 0.19 s direct, back to back).
//!
//! A direct write returns only once the disk has the bytes (about 0.5 ms
//! per MiB here, as long as hashing the MiB takes). So full windows are
//! written by a thread of the file's own while the caller hashes and fills
//! the next one: a single download then runs at the speed of the slower of
//! the two rather than of their sum.
//!
//! `O_DIRECT` wants the buffer's address, the file offset and the length
//! aligned to the device's block: windows are aligned to their own size
//! (2 MiB, one transparent huge page where the kernel allows) and written
//! only whole, and the last, partial block goes through the page cache. A
//! filesystem without `O_DIRECT` (tmpfs), or one that refuses a write of
//! ours, gets every byte through the page cache instead.

use rustix::fs::OFlags;
use std::alloc::Layout;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::sync::mpsc;

/// What one direct write carries: a multiple of any block size in use,
/// and the size of a huge page on x86-64 and arm64 (4 KiB base pages).
const CHUNK: usize = 2 << 20;
/// The buffer through the page cache, as a `BufWriter`'s: many small
/// writes (a serialised manifest) become few system calls.
const SMALL: usize = 256 << 10;
/// Direct windows one file owns at most: one filling while the others
/// wait for or are in the disk write. A third is made only when the disk
/// falls behind, so a download holds 4 to 6 MiB whatever its size.
const WINDOWS: usize = 3;

/// A buffer and the bytes waiting in it.
struct Window {
    buf: Buffer,
    len: usize,
}

enum Buffer {
    /// Through the page cache: any address will do.
    Small(Vec<u8>),
    Huge(HugeBuffer),
}

impl Window {
    fn aligned() -> Window {
        Window {
            buf: Buffer::Huge(HugeBuffer::new()),
            len: 0,
        }
    }

    fn small() -> Window {
        Window {
            buf: Buffer::Small(vec![0u8; SMALL]),
            len: 0,
        }
    }

    fn space(&mut self) -> &mut [u8] {
        match &mut self.buf {
            Buffer::Small(buf) => buf,
            Buffer::Huge(buf) => buf.as_mut_slice(),
        }
    }

    fn all(&self) -> &[u8] {
        match &self.buf {
            Buffer::Small(buf) => buf,
            Buffer::Huge(buf) => buf.as_slice(),
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.all()[..self.len]
    }

    /// Copies as much of `data` as fits; returns how much.
    fn fill(&mut self, data: &[u8]) -> usize {
        let at = self.len;
        let space = &mut self.space()[at..];
        let taken = data.len().min(space.len());
        space[..taken].copy_from_slice(&data[..taken]);
        self.len += taken;
        taken
    }

    fn is_full(&self) -> bool {
        self.len == self.all().len()
    }
}

/// `CHUNK` bytes, zeroed, at a `CHUNK`-aligned address, asked to be one
/// transparent huge page (THP in "madvise" mode, most distributions'
/// default, gives one only on request). Filling it then faults once
/// rather than 512 times, and each direct write pins one page rather than
/// 512: page faults per 384 MiB pull 5,000 -> 1,100, 3-11% of its time.
struct HugeBuffer {
    start: std::ptr::NonNull<u8>,
}

// SAFETY: the buffer is owned memory, reached only through `&self` and
// `&mut self`, like a `Vec<u8>`.
unsafe impl Send for HugeBuffer {}

impl HugeBuffer {
    const LAYOUT: Layout = match Layout::from_size_align(CHUNK, CHUNK) {
        Ok(layout) => layout,
        Err(_) => panic!("CHUNK is a power of two"),
    };

    /// A buffer from the pool, or a new one.
    fn new() -> HugeBuffer {
        if let Some(buffer) = spare_buffers().pop() {
            return buffer;
        }
        // SAFETY: the layout's size is not zero.
        let start = unsafe { std::alloc::alloc(Self::LAYOUT) };
        let Some(start) = std::ptr::NonNull::new(start) else {
            std::alloc::handle_alloc_error(Self::LAYOUT)
        };
        // SAFETY: the range is this allocation, and the advice changes none
        // of its bytes. Advice only: without THP it stays small pages. It
        // must come before the first touch, so the zeroing follows it.
        unsafe {
            let _ = rustix::mm::madvise(
                start.as_ptr().cast(),
                CHUNK,
                rustix::mm::Advice::LinuxHugepage,
            );
            std::ptr::write_bytes(start.as_ptr(), 0, CHUNK);
        }
        HugeBuffer { start }
    }

    fn as_slice(&self) -> &[u8] {
        // SAFETY: `CHUNK` initialised bytes, owned, borrowed with `self`.
        unsafe { std::slice::from_raw_parts(self.start.as_ptr(), CHUNK) }
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as above, borrowed mutably with `self`.
        unsafe { std::slice::from_raw_parts_mut(self.start.as_ptr(), CHUNK) }
    }
}

impl Drop for HugeBuffer {
    fn drop(&mut self) {
        let mut spare = spare_buffers();
        if spare.len() < POOLED {
            // Its bytes stay initialised: a window tracks its own length.
            spare.push(HugeBuffer { start: self.start });
            return;
        }
        // SAFETY: allocated in `new` with this layout, freed once (a pooled
        // copy is made only when this one is not freed).
        unsafe { std::alloc::dealloc(self.start.as_ptr(), Self::LAYOUT) }
    }
}

/// Buffers a finished blob leaves for the next: the kernel clears a fresh
/// one when it is first touched (on these VMs about 1 ms per buffer, 7% of
/// a 384 MiB pull's CPU when every blob made its own), while a reused one
/// is ready. As many as three downloads at their
/// most use, so what a pull holds at its peak does not grow.
const POOLED: usize = 3 * WINDOWS;

fn spare_buffers() -> std::sync::MutexGuard<'static, Vec<HugeBuffer>> {
    static SPARE: std::sync::Mutex<Vec<HugeBuffer>> = std::sync::Mutex::new(Vec::new());
    // A panic while holding it leaves the list itself intact.
    SPARE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The thread writing a direct file's full windows, and the way back for
/// each window once written (or for the error that stopped it).
struct Flusher {
    queue: Option<mpsc::SyncSender<(u64, Window)>>,
    written: mpsc::Receiver<io::Result<Window>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Windows sent and not yet back.
    in_flight: usize,
}

impl Flusher {
    fn start(file: File) -> io::Result<Flusher> {
        let (queue, windows) = mpsc::sync_channel::<(u64, Window)>(WINDOWS);
        let (done, written) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("blob-writer".into())
            .spawn(move || {
                for (offset, mut window) in windows {
                    let result = write_at(&file, offset, window.bytes()).map(|()| {
                        window.len = 0;
                        window
                    });
                    if done.send(result).is_err() {
                        return;
                    }
                }
            })?;
        Ok(Flusher {
            queue: Some(queue),
            written,
            thread: Some(thread),
            in_flight: 0,
        })
    }

    fn send(&mut self, offset: u64, window: Window) -> io::Result<()> {
        let queue = self.queue.as_ref().expect("sent to before the end");
        queue.send((offset, window)).map_err(|_| stopped())?;
        self.in_flight += 1;
        Ok(())
    }

    /// A written window back, waiting for one if `wait`; `None` when none
    /// is out, or (not waiting) none is back yet.
    fn take(&mut self, wait: bool) -> io::Result<Option<Window>> {
        if self.in_flight == 0 {
            return Ok(None);
        }
        // Err(true): the thread is gone (it panicked); nothing more comes.
        let back = if wait {
            self.written.recv().map_err(|_| true)
        } else {
            self.written
                .try_recv()
                .map_err(|e| e == mpsc::TryRecvError::Disconnected)
        };
        match back {
            Ok(result) => {
                self.in_flight -= 1;
                result.map(Some)
            }
            Err(false) => Ok(None),
            Err(true) => {
                self.in_flight = 0;
                Err(stopped())
            }
        }
    }

    /// Waits until every window sent is on disk; the first error, if any.
    fn finish(&mut self) -> io::Result<()> {
        self.queue = None;
        let mut outcome = Ok(());
        while self.in_flight > 0 {
            if let Err(e) = self.take(true)
                && outcome.is_ok()
            {
                outcome = Err(e);
            }
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        outcome
    }
}

impl Drop for Flusher {
    /// A blob given up on (a digest mismatch, a failed download) still
    /// waits for its writes, so that no thread outlives it writing into a
    /// temp file that is gone.
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// Writes `bytes` at `offset`. If the filesystem turns a direct write
/// down (EINVAL: an alignment it wants and we do not meet), the file is
/// switched to the page cache, for this and every later write, and the
/// bytes are written again from `offset`.
fn write_at(file: &File, offset: u64, bytes: &[u8]) -> io::Result<()> {
    match file.write_all_at(bytes, offset) {
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {
            set_direct(file, false)?;
            file.write_all_at(bytes, offset)
        }
        result => result,
    }
}

pub(super) struct BlobFile {
    /// Declared first so that it is dropped (its writes waited for)
    /// before the temp file is.
    flusher: Option<Flusher>,
    tmp: tempfile::NamedTempFile,
    window: Window,
    /// Bytes in the file, or on their way there, before the window.
    flushed: u64,
    direct: bool,
    /// Written windows back for reuse.
    spare: Vec<Window>,
    /// Direct windows made so far.
    windows: usize,
}

impl BlobFile {
    /// A writer into `tmp`, around the page cache when `direct` asks and
    /// the filesystem allows.
    pub(super) fn new(tmp: tempfile::NamedTempFile, direct: bool) -> BlobFile {
        let direct = direct && set_direct(tmp.as_file(), true).is_ok();
        BlobFile {
            flusher: None,
            tmp,
            window: if direct {
                Window::aligned()
            } else {
                Window::small()
            },
            flushed: 0,
            direct,
            spare: Vec::new(),
            windows: 1,
        }
    }

    /// Writes what is buffered and returns the file, all bytes in it.
    pub(super) fn finish(mut self) -> io::Result<tempfile::NamedTempFile> {
        if let Some(flusher) = self.flusher.as_mut() {
            flusher.finish()?;
        }
        if self.window.len > 0 {
            // A partial block cannot go direct: it goes through the cache.
            if self.direct {
                set_direct(self.tmp.as_file(), false)?;
            }
            self.tmp
                .as_file()
                .write_all_at(self.window.bytes(), self.flushed)?;
        }
        Ok(self.tmp)
    }

    /// Hands the full window to the writer thread (started on the first)
    /// and takes an empty one: a spare, a new one while fewer than
    /// `WINDOWS` exist, else the first one written.
    fn send_window(&mut self) -> io::Result<()> {
        if self.flusher.is_none() {
            self.flusher = Some(Flusher::start(self.tmp.as_file().try_clone()?)?);
        }
        let flusher = self.flusher.as_mut().expect("started above");
        while let Some(window) = flusher.take(false)? {
            self.spare.push(window);
        }
        let next = match self.spare.pop() {
            Some(window) => window,
            None if self.windows < WINDOWS => {
                self.windows += 1;
                Window::aligned()
            }
            None => flusher.take(true)?.ok_or_else(stopped)?,
        };
        let full = std::mem::replace(&mut self.window, next);
        flusher.send(self.flushed, full)?;
        self.flushed += CHUNK as u64;
        Ok(())
    }
}

impl Write for BlobFile {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.direct {
            let taken = self.window.fill(data);
            if self.window.is_full() {
                self.send_window()?;
            }
            return Ok(taken);
        }
        let file = self.tmp.as_file();
        if self.window.len == 0 && data.len() >= SMALL {
            // Large enough to go as it is, as BufWriter lets it.
            let n = file.write_at(data, self.flushed)?;
            self.flushed += n as u64;
            return Ok(n);
        }
        let taken = self.window.fill(data);
        if self.window.is_full() {
            file.write_all_at(self.window.bytes(), self.flushed)?;
            self.flushed += SMALL as u64;
            self.window.len = 0;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn set_direct(file: &File, on: bool) -> io::Result<()> {
    let flags = rustix::fs::fcntl_getfl(file)?;
    let flags = if on {
        flags | OFlags::DIRECT
    } else {
        flags - OFlags::DIRECT
    };
    rustix::fs::fcntl_setfl(file, flags)?;
    Ok(())
}

fn stopped() -> io::Error {
    io::Error::other("the blob's writer thread stopped")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn written(direct: bool, dir: &std::path::Path, data: &[u8], pieces: usize) -> Vec<u8> {
        let tmp = tempfile::NamedTempFile::new_in(dir).unwrap();
        let mut file = BlobFile::new(tmp, direct);
        for piece in data.chunks(pieces) {
            file.write_all(piece).unwrap();
        }
        let tmp = file.finish().unwrap();
        let mut back = Vec::new();
        std::fs::File::open(tmp.path())
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        back
    }

    #[test]
    fn every_byte_lands_whatever_the_sizes_direct_or_not() {
        let data: Vec<u8> = (0..(3 * CHUNK + 12345))
            .map(|n| (n * 7 % 251) as u8)
            .collect();
        // The store's own filesystem (O_DIRECT where it allows), and /dev/shm
        // (tmpfs: no O_DIRECT, so the page cache throughout).
        let dirs = [std::env::temp_dir(), std::path::PathBuf::from("/dev/shm")];
        for dir in dirs.iter().filter(|d| d.is_dir()) {
            for pieces in [61, 4095, 65536, 417_792, CHUNK, 2 * CHUNK + 1] {
                for direct in [false, true] {
                    let back = written(direct, dir, &data, pieces);
                    assert!(back == data, "{dir:?} pieces {pieces} direct {direct}");
                }
            }
            for size in [0, 1, 4096, CHUNK, CHUNK + 1] {
                let back = written(true, dir, &data[..size], 1000);
                assert!(back == data[..size], "{dir:?} size {size}");
            }
        }
    }

    #[test]
    fn a_write_that_fails_on_the_writer_thread_is_reported_not_lost() {
        // A temp file whose descriptor cannot write: every write fails
        // (EBADF), on the writer thread as on ours.
        let tmp = tempfile::NamedTempFile::new_in(std::env::temp_dir()).unwrap();
        let read_only = std::fs::File::open(tmp.path()).unwrap();
        let tmp = tempfile::NamedTempFile::from_parts(read_only, tmp.into_temp_path());
        let mut file = BlobFile::new(tmp, true);
        if !file.direct {
            eprintln!("no O_DIRECT in the temp dir: only the page cache's path is checked");
        }
        let data = vec![7u8; 8 * CHUNK];
        // The first full windows are queued without waiting; a later one
        // waits for a window back and finds the error.
        let failed = file.write_all(&data).err().or_else(|| file.finish().err());
        let error = failed.expect("a failed write is reported");
        assert_eq!(
            error.raw_os_error(),
            Some(rustix::io::Errno::BADF.raw_os_error())
        );
    }
}
