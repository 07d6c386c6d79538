//! Streaming decoder for recordings (WAV incl. µ-law/A-law, FLAC, MP3, Ogg Vorbis) built on
//! symphonia. Reads one packet at a time, so a two-hour file never sits in memory.

use std::fs::File;
use std::path::{Path, PathBuf};

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use crate::error::AudioError;
use crate::resample::{MAX_RATE, MIN_RATE};

/// An open recording, decoded packet by packet to interleaved `f32`.
pub struct Decoder {
    path: PathBuf,
    format: Box<dyn FormatReader>,
    decoder: Box<dyn symphonia::core::codecs::Decoder>,
    track_id: u32,
    rate: u32,
    channels: usize,
    declared_frames: Option<u64>,
    decoded_frames: u64,
    buffer: Option<SampleBuffer<f32>>,
    /// The block handed out: the packet's samples, after any silence standing in for damaged
    /// data before it.
    out: Vec<f32>,
    pending_first: bool,
    codec: String,
    /// Timestamp of the first packet, and the frames decoded since: where the next packet
    /// should start (a reader that resynced past damaged data starts later).
    first_ts: Option<u64>,
    skipped_packets: u64,
    filled_frames: u64,
    consecutive_bad: u32,
    /// Frames of the last good packet (the length of a skipped one that does not say).
    last_frames: u64,
    /// Packet timestamps count frames (time base 1/rate), so gaps in them can be measured.
    ts_in_frames: bool,
}

/// A run of this many undecodable packets in a row is a broken file, not a damaged packet.
const MAX_CONSECUTIVE_BAD: u32 = 50;
/// Silence put in for one damaged stretch is at most this long, and for a whole file at most
/// `MAX_TOTAL_FILL_S`; a packet or a timestamp that claims more is corrupt itself (and must
/// not make us allocate for it).
const MAX_FILL_S: u64 = 5;
const MAX_TOTAL_FILL_S: u64 = 60;

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("path", &self.path)
            .field("rate", &self.rate)
            .field("channels", &self.channels)
            .finish_non_exhaustive()
    }
}

impl Decoder {
    /// Opens and probes a file from disk.
    pub fn open(path: &Path) -> Result<Self, AudioError> {
        let file = File::open(path).map_err(|e| AudioError::io(path, e))?;
        let len = file.metadata().map_err(|e| AudioError::io(path, e))?.len();
        if len == 0 {
            return Err(AudioError::EmptyFile {
                path: path.to_path_buf(),
            });
        }
        let mut hint = Hint::new();
        if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(ext);
        }
        Self::from_source(path, Box::new(file), hint)
    }

    /// Opens an in-memory recording (fuzzing, tests). `name` is used in messages.
    pub fn from_bytes(name: &Path, bytes: Vec<u8>) -> Result<Self, AudioError> {
        if bytes.is_empty() {
            return Err(AudioError::EmptyFile {
                path: name.to_path_buf(),
            });
        }
        Self::from_source(name, Box::new(std::io::Cursor::new(bytes)), Hint::new())
    }

    fn from_source(
        path: &Path,
        source: Box<dyn symphonia::core::io::MediaSource>,
        hint: Hint,
    ) -> Result<Self, AudioError> {
        let mss = MediaSourceStream::new(source, Default::default());
        let probed = symphonia::default::get_probe()
            .format(
                &hint,
                mss,
                &FormatOptions::default(),
                &MetadataOptions::default(),
            )
            .map_err(|e| classify(path, e, "could not recognise the file format"))?;
        let format = probed.format;
        let track = format
            .tracks()
            .iter()
            .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
            .ok_or_else(|| AudioError::Unsupported {
                path: path.to_path_buf(),
                detail: "no audio track".into(),
            })?;
        let params = track.codec_params.clone();
        let track_id = track.id;
        let codec = symphonia::default::get_codecs()
            .get_codec(params.codec)
            .map(|d| d.short_name.to_string())
            .unwrap_or_else(|| format!("{:?}", params.codec));
        let decoder = symphonia::default::get_codecs()
            .make(&params, &DecoderOptions::default())
            .map_err(|e| classify(path, e, "unsupported codec"))?;
        let mut me = Self {
            path: path.to_path_buf(),
            format,
            decoder,
            track_id,
            rate: params.sample_rate.unwrap_or(0),
            channels: params.channels.map(|c| c.count()).unwrap_or(0),
            declared_frames: params.n_frames,
            decoded_frames: 0,
            buffer: None,
            out: Vec::new(),
            pending_first: false,
            codec,
            first_ts: None,
            skipped_packets: 0,
            filled_frames: 0,
            consecutive_bad: 0,
            last_frames: 0,
            ts_in_frames: params
                .time_base
                .zip(params.sample_rate)
                .is_some_and(|(tb, rate)| tb.numer == 1 && tb.denom == rate),
        };
        // Decode the first packet now: some formats state rate/channels only there, and a file
        // whose first packet is broken should fail at open, not half-way through analysis.
        if me.decode_next()? {
            me.pending_first = true;
        } else {
            return Err(AudioError::NoAudio {
                path: path.to_path_buf(),
            });
        }
        if !(MIN_RATE..=MAX_RATE).contains(&me.rate) {
            return Err(AudioError::BadSampleRate {
                path: path.to_path_buf(),
                rate: me.rate,
            });
        }
        if me.channels == 0 {
            return Err(AudioError::Unsupported {
                path: path.to_path_buf(),
                detail: "no channels".into(),
            });
        }
        Ok(me)
    }

    /// Sample rate in Hz.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Channel count.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Codec short name (e.g. "pcm_s16le", "flac", "mp3").
    pub fn codec(&self) -> &str {
        &self.codec
    }

    /// The file this decoder reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Frames (samples per channel) promised by the header, when it says.
    pub fn declared_frames(&self) -> Option<u64> {
        self.declared_frames
    }

    /// Frames decoded so far.
    pub fn decoded_frames(&self) -> u64 {
        self.decoded_frames
    }

    /// Packets that could not be decoded and were replaced by silence of their length, and
    /// the frames of silence put in for them and for data a reader skipped to resync.
    pub fn damaged(&self) -> (u64, u64) {
        (self.skipped_packets, self.filled_frames)
    }

    /// Next block of interleaved samples, or `None` at the end of the stream.
    /// Allocates only when a block is larger than any before it.
    pub fn next_block(&mut self) -> Result<Option<&[f32]>, AudioError> {
        if self.pending_first {
            self.pending_first = false;
        } else if !self.decode_next()? {
            return Ok(None);
        }
        Ok(Some(&self.out))
    }

    /// Frames of the last good packet (the size of a packet in this stream).
    pub fn packet_frames(&self) -> u64 {
        self.last_frames
    }

    /// `frames` of silence as the next block (damaged data keeps its length, so the parties
    /// stay aligned).
    fn silence(&mut self, frames: u64) {
        self.out.clear();
        self.out.resize(frames as usize * self.channels.max(1), 0.0);
        self.filled_frames += frames;
        self.decoded_frames += frames;
    }

    /// Decodes the next packet of our track into `self.buffer`; false at end of stream.
    fn decode_next(&mut self) -> Result<bool, AudioError> {
        loop {
            let packet = match self.format.next_packet() {
                Ok(p) => p,
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Ok(false)
                }
                Err(e) => return Err(classify(&self.path, e, "could not read the next packet")),
            };
            if packet.track_id() != self.track_id {
                continue;
            }
            let (ts, dur) = (packet.ts(), packet.dur());
            let decoded = match self.decoder.decode(&packet) {
                Ok(d) => d,
                // One damaged packet after good ones: silence of its length, counted.
                Err(SymError::DecodeError(_))
                    if self.decoded_frames > 0 && self.consecutive_bad < MAX_CONSECUTIVE_BAD =>
                {
                    self.consecutive_bad += 1;
                    self.skipped_packets += 1;
                    let frames = if dur > 0 { dur } else { self.last_frames };
                    if frames > MAX_FILL_S * u64::from(self.rate)
                        || self.filled_frames + frames > MAX_TOTAL_FILL_S * u64::from(self.rate)
                    {
                        return Err(AudioError::Corrupt {
                            path: self.path.clone(),
                            detail: format!("a damaged packet claims {frames} frames"),
                        });
                    }
                    self.silence(frames);
                    return Ok(true);
                }
                Err(e) => return Err(classify(&self.path, e, "could not decode a packet")),
            };
            self.consecutive_bad = 0;
            let spec = *decoded.spec();
            let frames = decoded.frames();
            if frames == 0 {
                continue;
            }
            if self.rate == 0 {
                self.rate = spec.rate;
            }
            if self.channels == 0 {
                self.channels = spec.channels.count();
            }
            if spec.rate != self.rate || spec.channels.count() != self.channels {
                return Err(AudioError::Corrupt {
                    path: self.path.clone(),
                    detail: format!(
                        "the stream changes format mid-way ({} Hz × {} ch to {} Hz × {} ch)",
                        self.rate,
                        self.channels,
                        spec.rate,
                        spec.channels.count()
                    ),
                });
            }
            let need = decoded.capacity() as u64;
            let fits = self
                .buffer
                .as_ref()
                .is_some_and(|b| b.capacity() as u64 >= need);
            if !fits {
                self.buffer = Some(SampleBuffer::new(need, spec));
            }
            // Data the reader skipped to resync (its next packet starts later than the last one
            // ended): silence of that length first.
            let first = *self.first_ts.get_or_insert(ts);
            let gap = ts.saturating_sub(first).saturating_sub(self.decoded_frames);
            let too_much = gap > MAX_FILL_S * u64::from(self.rate)
                || self.filled_frames + gap > MAX_TOTAL_FILL_S * u64::from(self.rate);
            if too_much && self.ts_in_frames && self.decoded_frames > 0 {
                return Err(AudioError::Corrupt {
                    path: self.path.clone(),
                    detail: format!(
                        "the stream jumps {:.1} s ahead; the data in between is missing",
                        gap as f64 / f64::from(self.rate.max(1))
                    ),
                });
            }
            self.out.clear();
            if gap > 0 && self.decoded_frames > 0 && self.ts_in_frames {
                self.out.resize(gap as usize * self.channels, 0.0);
                self.filled_frames += gap;
                self.decoded_frames += gap;
            }
            if let Some(buf) = self.buffer.as_mut() {
                buf.copy_interleaved_ref(decoded);
                self.out.extend_from_slice(buf.samples());
            }
            self.decoded_frames += frames as u64;
            self.last_frames = frames as u64;
            return Ok(true);
        }
    }
}

fn classify(path: &Path, e: SymError, context: &str) -> AudioError {
    let path = path.to_path_buf();
    match e {
        SymError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            AudioError::Corrupt {
                path,
                detail: format!("{context}: the file ends early"),
            }
        }
        SymError::IoError(error) => AudioError::Io { path, error },
        SymError::Unsupported(what) => AudioError::Unsupported {
            path,
            detail: format!("{context}: {what}"),
        },
        SymError::DecodeError(what) => AudioError::Corrupt {
            path,
            detail: format!("{context}: {what}"),
        },
        SymError::LimitError(what) => AudioError::Corrupt {
            path,
            detail: format!("{context}: limit reached: {what}"),
        },
        other => AudioError::Corrupt {
            path,
            detail: format!("{context}: {other}"),
        },
    }
}
