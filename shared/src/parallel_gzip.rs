//! A gzip writer that compresses on every core, as pigz does: the input is
//! cut into fixed blocks, each deflated on its own with the 32 KiB before
//! it as the dictionary, and the pieces joined into one ordinary gzip
//! member (every decoder reads it; the ratio is within a fraction of a
//! percent of one stream's).
//!
//! The blocks are cut at fixed offsets and each depends only on its input
//! and its dictionary, so the bytes are the same whatever the number of
//! threads: a build with `SOURCE_DATE_EPOCH` is reproducible across
//! machines. An input smaller than one block never starts a thread.
//!
//! Why not the `gzp` crate: its `finish` keeps the inner writer (a layer's
//! blob writer must be committed after the trailer), and it brings its own
//! thread pool and channel crates for what is a short loop over flate2.

use flate2::{Compress, Compression, Crc, FlushCompress, Status};
use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Input per block: pigz's default, big enough that the dictionary's
/// reset costs nothing measurable, small enough to spread a few MiB.
const BLOCK: usize = 128 * 1024;
/// Deflate's window: all a block can refer back to.
const DICTIONARY: usize = 32 * 1024;
/// No more threads than this, however many cores: past it the writer
/// that consumes the blocks is the limit.
const MOST_WORKERS: usize = 8;

/// gzip's fixed header: deflate, no name, no time, unknown OS (what
/// flate2 and Go's gzip write).
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

struct Job {
    input: Vec<u8>,
    dictionary: Vec<u8>,
    last: bool,
    done: SyncSender<io::Result<Vec<u8>>>,
}

/// The threads, started on the second block.
struct Workers {
    jobs: Option<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl Workers {
    fn start(count: usize, level: Compression) -> Workers {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let threads = (0..count)
            .map(|_| {
                let queue = Arc::clone(&queue);
                std::thread::spawn(move || work(&queue, level))
            })
            .collect();
        Workers {
            jobs: Some(jobs),
            threads,
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        // Closing the queue ends each thread after its current block.
        self.jobs.take();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn work(queue: &Mutex<Receiver<Job>>, level: Compression) {
    loop {
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let out = deflate_block(level, &job.input, &job.dictionary, job.last);
        // The writer may have gone (an error elsewhere): nothing to tell.
        let _ = job.done.send(out);
    }
}

/// One block as raw deflate: ends byte-aligned with an empty stored block
/// (a sync flush) so the next block's bytes can follow, or, for the last,
/// with the final block bit.
///
/// Each block gets a new compressor: zlib-rs's `reset` leaves state that
/// changes the matches found, so a reused one made the output depend on
/// which blocks a thread had compressed before (measured on a Debian
/// rootfs: a few bytes' difference between runs). A new one costs its
/// allocation, nothing against deflating 128 KiB.
fn deflate_block(
    level: Compression,
    input: &[u8],
    dictionary: &[u8],
    last: bool,
) -> io::Result<Vec<u8>> {
    let mut deflate = Compress::new(level, false);
    if !dictionary.is_empty() {
        deflate
            .set_dictionary(dictionary)
            .map_err(io::Error::other)?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    // Incompressible input grows by 5 bytes per 16 KiB stored block.
    let mut out = Vec::with_capacity(input.len() + input.len() / 1024 + 64);
    let start = deflate.total_in();
    loop {
        let consumed = (deflate.total_in() - start) as usize;
        let status = deflate
            .compress_vec(&input[consumed..], &mut out, flush)
            .map_err(io::Error::other)?;
        let all_in = (deflate.total_in() - start) as usize == input.len();
        let finished = if last {
            status == Status::StreamEnd
        } else {
            // A flush that left room in the output has written everything.
            all_in && out.len() < out.capacity()
        };
        if finished {
            return Ok(out);
        }
        out.reserve(out.capacity().max(4096));
    }
}

/// Writes gzip to `W`, compressing blocks on up to one thread per core.
/// [`ParallelGzip::finish`] writes the trailer and hands `W` back; a writer
/// dropped unfinished stops its threads and leaves `W` incomplete.
pub struct ParallelGzip<W: Write> {
    inner: Option<W>,
    level: Compression,
    most_workers: usize,
    workers: Option<Workers>,
    /// The block being filled.
    current: Vec<u8>,
    /// The end of the last block sent: the next one's dictionary.
    dictionary: Vec<u8>,
    /// Blocks sent, oldest first, whose output is still to be written.
    in_flight: VecDeque<Receiver<io::Result<Vec<u8>>>>,
    crc: Crc,
    header_written: bool,
}

impl<W: Write> ParallelGzip<W> {
    /// A writer using as many threads as the process may run on.
    pub fn new(inner: W, level: Compression) -> ParallelGzip<W> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        ParallelGzip::with_workers(inner, level, cores.min(MOST_WORKERS))
    }

    /// A writer with at most `workers` threads (one or fewer: none).
    pub fn with_workers(inner: W, level: Compression, workers: usize) -> ParallelGzip<W> {
        ParallelGzip {
            inner: Some(inner),
            level,
            most_workers: workers,
            workers: None,
            current: Vec::with_capacity(BLOCK),
            dictionary: Vec::new(),
            in_flight: VecDeque::new(),
            crc: Crc::new(),
            header_written: false,
        }
    }

    fn inner(&mut self) -> &mut W {
        self.inner.as_mut().expect("present until finished")
    }

    fn write_header(&mut self) -> io::Result<()> {
        if !self.header_written {
            self.inner().write_all(&HEADER)?;
            self.header_written = true;
        }
        Ok(())
    }

    /// Hands the filled block on: to the threads, or compressed here.
    fn send_block(&mut self, last: bool) -> io::Result<()> {
        self.write_header()?;
        let input = std::mem::replace(&mut self.current, Vec::with_capacity(BLOCK));
        let keep = input.len().min(DICTIONARY);
        let dictionary =
            std::mem::replace(&mut self.dictionary, input[input.len() - keep..].to_vec());
        // A whole input that fits one block is done here, threads or not.
        let threaded = self.most_workers > 1 && !(last && self.workers.is_none());
        if !threaded {
            let out = deflate_block(self.level, &input, &dictionary, last)?;
            return self.inner().write_all(&out);
        }
        let (most, level) = (self.most_workers, self.level);
        let workers = self
            .workers
            .get_or_insert_with(|| Workers::start(most, level));
        let (done, result) = mpsc::sync_channel(1);
        let job = Job {
            input,
            dictionary,
            last,
            done,
        };
        let sent = workers.jobs.as_ref().map(|jobs| jobs.send(job).is_ok());
        if sent != Some(true) {
            return Err(io::Error::other("the compression threads stopped"));
        }
        self.in_flight.push_back(result);
        // Two blocks per thread keep them busy while one is written out.
        while self.in_flight.len() > 2 * most {
            self.write_oldest()?;
        }
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        let Some(result) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let out = result
            .recv()
            .map_err(|_| io::Error::other("a compression thread stopped"))??;
        self.inner().write_all(&out)
    }

    /// Writes the last block and the trailer (CRC-32 and length), and
    /// returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.send_block(true)?;
        while !self.in_flight.is_empty() {
            self.write_oldest()?;
        }
        let (crc, length) = (self.crc.sum(), self.crc.amount());
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&crc.to_le_bytes());
        trailer[4..].copy_from_slice(&length.to_le_bytes());
        self.inner().write_all(&trailer)?;
        self.workers.take();
        Ok(self.inner.take().expect("present until finished"))
    }
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.current.len() == BLOCK {
            // Only now is it known that the full block is not the last.
            self.send_block(false)?;
        }
        let take = buf.len().min(BLOCK - self.current.len());
        self.current.extend_from_slice(&buf[..take]);
        self.crc.update(&buf[..take]);
        Ok(take)
    }

    /// Blocks are cut at fixed offsets (so that the output is the same
    /// everywhere): a flush passes on what is complete, no more.
    fn flush(&mut self) -> io::Result<()> {
        self.inner().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Text-like bytes that compress, with runs that refer across blocks.
    fn sample(len: usize) -> Vec<u8> {
        let mut state: u32 = 7;
        (0..len)
            .map(|i| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                if i % 3 == 0 {
                    (state >> 24) as u8
                } else {
                    b"abcdefgh"[i % 8]
                }
            })
            .collect()
    }

    fn compress(data: &[u8], workers: usize) -> Vec<u8> {
        let mut gz = ParallelGzip::with_workers(Vec::new(), Compression::default(), workers);
        // Uneven writes, so that blocks are filled across calls.
        for piece in data.chunks(10_007) {
            gz.write_all(piece).unwrap();
        }
        gz.finish().unwrap()
    }

    fn gunzip(gz: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn every_size_reads_back_and_is_the_same_with_any_thread_count() {
        for len in [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 5 * BLOCK + 7] {
            let data = sample(len);
            let alone = compress(&data, 1);
            assert_eq!(gunzip(&alone), data, "{len} bytes, no threads");
            for workers in [2, 3, 8] {
                assert_eq!(
                    compress(&data, workers),
                    alone,
                    "{len} bytes, {workers} threads"
                );
            }
        }
    }

    /// Real binary data over many blocks: a compressor's state leaking from
    /// one block into the next showed only at this scale (see
    /// `deflate_block`); which blocks a thread gets changes from run to run.
    #[test]
    fn many_blocks_of_a_real_binary_give_the_same_bytes_every_time() {
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let data = &exe[..exe.len().min(96 * BLOCK)];
        let alone = compress(data, 1);
        for workers in [2, 2, 3, 4] {
            assert!(compress(data, workers) == alone, "{workers} threads");
        }
        assert!(gunzip(&alone) == data);
    }

    #[test]
    fn the_system_gzip_reads_it_as_one_member() {
        let data = sample(3 * BLOCK + 11);
        let gz = compress(&data, 2);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob.gz");
        std::fs::write(&path, &gz).unwrap();
        let out = std::process::Command::new("gzip")
            .args(["-t", "-v"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // A second member would not be read by a single-member decoder.
        let mut first = Vec::new();
        flate2::bufread::GzDecoder::new(&gz[..])
            .read_to_end(&mut first)
            .unwrap();
        assert_eq!(first, data);
    }

    #[test]
    fn the_dictionary_keeps_the_ratio_of_one_stream() {
        let data = sample(8 * BLOCK);
        let ours = compress(&data, 2).len();
        let mut one = flate2::write::GzEncoder::new(Vec::new(), Compression::default());
        one.write_all(&data).unwrap();
        let one = one.finish().unwrap().len();
        assert!(
            ours * 1000 <= one * 1005,
            "{ours} bytes against one stream's {one}"
        );
    }

    /// A sink that fails after `room` bytes.
    struct Full {
        room: usize,
    }

    impl Write for Full {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if buf.len() > self.room {
                return Err(io::Error::new(io::ErrorKind::StorageFull, "full"));
            }
            self.room -= buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failing_sink_is_an_error_not_a_hang() {
        let data = sample(40 * BLOCK);
        let mut gz = ParallelGzip::with_workers(Full { room: 100_000 }, Compression::default(), 2);
        let written = data.chunks(BLOCK).try_for_each(|piece| gz.write_all(piece));
        let result = written.and_then(|()| gz.finish().map(|_| ()));
        let error = result.expect_err("the sink is full");
        assert_eq!(error.kind(), io::ErrorKind::StorageFull);
    }

    #[test]
    fn a_writer_dropped_unfinished_stops_its_threads() {
        let mut gz = ParallelGzip::with_workers(Vec::new(), Compression::default(), 4);
        gz.write_all(&sample(20 * BLOCK)).unwrap();
        drop(gz);
    }
}
