//! A call's transcription: segmenters on the pipeline thread, Whisper on its own thread.

use super::*;

/// The live session's loaded Whisper model, lent to each call's worker and handed back when
/// the call is finished: the model is loaded once per session, not per call (a call that starts
/// while the previous one is still finishing loads a second copy meanwhile).
pub(super) type ModelSlot = Arc<std::sync::Mutex<Option<Box<dyn Transcriber>>>>;

/// A call's transcription: segmenters on the pipeline thread, Whisper on its own thread.
pub(super) struct AsrLane {
    pub(super) worker: Worker,
    pub(super) slot: ModelSlot,
    pub(super) segmenters: [Segmenter; 2],
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
            model: model.to_path_buf(),
            started: Instant::now(),
        }
    }
    /// One frame's audio with its confirmed speech flag (from the call's single pass).
    pub(super) fn frame(
        &mut self,
        p: Party,
        f: &callcoach_audio::FrameFeatures,
        frame: &[f32; FRAME_LEN],
    ) {
        let AsrLane {
            worker, segmenters, ..
        } = self;
        // Never blocks: a full queue drops its oldest job and counts it.
        segmenters[p.index()].push(f.index * 10, frame, f.speech, &mut |job| worker.submit(job));
    }
}
