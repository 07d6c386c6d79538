//! A call's transcription: segmenters on the pipeline thread, Whisper on its own thread.

use super::*;

pub(super) type PendingFrames = [VecDeque<(u64, [f32; FRAME_LEN])>; 2];

/// The live session's loaded Whisper model, lent to each call's worker and handed back when
/// the call is finished: the model is loaded once per session, not per call (a call that starts
/// while the previous one is still finishing loads a second copy meanwhile).
pub(super) type ModelSlot = Arc<std::sync::Mutex<Option<Box<dyn Transcriber>>>>;

/// A call's transcription: segmenters on the pipeline thread, Whisper on its own thread.
pub(super) struct AsrLane {
    pub(super) worker: Worker,
    pub(super) slot: ModelSlot,
    pub(super) segmenters: [Segmenter; 2],
    /// 16 kHz frames waiting for their speech flag (it comes after the VAD look-ahead).
    pub(super) pending: PendingFrames,
    pub(super) model: PathBuf,
    pub(super) started: Instant,
}

impl AsrLane {
    pub(super) fn start(model: &Path, slot: &ModelSlot, book: &RuleBook) -> Self {
        let path = model.to_path_buf();
        let mut cfg = crate::transcribe::asr_config_for(book);
        // Whisper on every core, at the lowest priority: the audio path (a few % of one core)
        // always runs first, and the transcripts use what is left.
        cfg.threads = std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 4));
        cfg.background = true;
        let loaded = slot.lock().ok().and_then(|mut s| s.take());
        let worker = match loaded {
            Some(t) => Worker::spawn(t, cfg, 8),
            None => Worker::spawn_loading(move || callcoach_asr::load_backend(&path), cfg, 8),
        };
        Self {
            worker,
            slot: slot.clone(),
            segmenters: [
                Segmenter::new(StreamConfig::default(), Speaker::Agent),
                Segmenter::new(StreamConfig::default(), Speaker::Caller),
            ],
            pending: [VecDeque::with_capacity(128), VecDeque::with_capacity(128)],
            model: model.to_path_buf(),
            started: Instant::now(),
        }
    }
    pub(super) fn frame(&mut self, p: Party, index: u64, speech: bool) {
        let AsrLane {
            worker,
            segmenters,
            pending,
            ..
        } = self;
        let q = &mut pending[p.index()];
        while let Some((idx, frame)) = q.front().copied() {
            if idx > index {
                break;
            }
            q.pop_front();
            if idx == index {
                // Never blocks: a full queue drops its oldest job and counts it.
                segmenters[p.index()].push(idx * 10, &frame, speech, &mut |job| worker.submit(job));
            }
        }
    }
}
