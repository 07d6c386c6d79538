//! The agent's overlay: an always-on-top window beside the CRM. Two modes (F7 switches):
//! **compact**, one slim bar — the agent's loudness and speech rate against their target bands,
//! the one most urgent warning with the line to say, and the call-flow checklist; **full** —
//! both parties' meters, talk ratio, silence and hold timers, every shown warning as a
//! flashing banner coloured by severity, the checklist and the status lines. Only the agent's
//! own figures are coloured against the agent's bands. Position and size are remembered per
//! mode; while nothing is shown the window lets clicks through to the CRM below.
//!
//! The window only draws what it is sent ([`ScreenEvent`]) and reports hotkeys ([`Hotkey`]);
//! it knows nothing of audio or rules, so it works the same for live capture, a replay, or a
//! supervisor's private nudge. eframe with the `glow` backend (runs on Mesa's software GL).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use callcoach_coach::{Severity, Warning, WarningState};
use crossbeam_channel::{Receiver, Sender};
use eframe::egui;
use serde::{Deserialize, Serialize};

mod draw;
pub mod geometry;

use geometry::{Placement, Remembered};

/// How much the window shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One slim bar: two meters, the most urgent warning, the checklist.
    #[default]
    Compact,
    /// Everything: both parties, every warning, timers, status.
    Full,
}

impl Mode {
    fn default_size(self) -> [f32; 2] {
        match self {
            Mode::Compact => [780.0, 56.0],
            Mode::Full => [480.0, 420.0],
        }
    }
    fn other(self) -> Mode {
        match self {
            Mode::Compact => Mode::Full,
            Mode::Full => Mode::Compact,
        }
    }
}

/// What the overlay is told.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ScreenEvent {
    Warning(Box<Warning>),
    Meters(MeterView),
    /// A supervisor's private nudge: shown like a warning until `clear_after`.
    Nudge {
        text: String,
        clear_after: Duration,
    },
    /// A line in the status bar (call started, device lost, ASR off…).
    Status(String),
    /// The run is over: the window closes after a short moment.
    End,
}

/// Live meters (agent, caller).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MeterView {
    pub in_call: bool,
    pub call_s: f32,
    pub loudness_lufs: [Option<f32>; 2],
    pub speaking: [bool; 2],
    pub chars_per_minute: [Option<f32>; 2],
    /// The rate is counted from the transcript (else estimated from syllable nuclei: shown
    /// with "≈").
    pub rate_from_text: [bool; 2],
    pub agent_talk_ratio: Option<f32>,
    pub silence_s: f32,
    pub hold_s: Option<f32>,
    pub lost: [bool; 2],
    /// The call-flow checklist, in [`callcoach_coach::FlowStep::ALL`] order.
    pub checklist: [bool; 4],
}

/// Keys pressed in the overlay (F9 start call, F10 end call, F8 hold on/off, F6 help; F7, switching
/// the mode, stays in the window).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Hotkey {
    CallStart,
    CallEnd,
    HoldToggle,
    /// Ask a supervisor for help (F6, or the button).
    Help,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OverlayError {
    #[error("cannot open the overlay window ({0}); is there a display (DISPLAY/WAYLAND_DISPLAY)? Use --ui text for headless runs")]
    Window(String),
}

/// How the overlay looks.
#[derive(Debug, Clone)]
pub struct OverlayOptions {
    /// Target speech-rate band, characters per minute.
    pub rate_band: (f32, f32),
    /// Target loudness band of the agent's voice, LUFS.
    pub loudness_band: (f32, f32),
    /// Font with Chinese glyphs; searched for when `None`.
    pub cjk_font: Option<PathBuf>,
    /// The mode to open in; `None`: the one used last (compact the first time).
    pub mode: Option<Mode>,
    /// Where position, size and mode are remembered; `None`: not remembered.
    pub state_file: Option<PathBuf>,
}

/// Where Debian, Fedora and friends keep CJK fonts (`fonts-wqy-microhei` first).
const CJK_FONTS: &[&str] = &[
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "C:\\Windows\\Fonts\\msyh.ttc",
    "/System/Library/Fonts/PingFang.ttc",
];

/// The CJK font to load: `explicit`, else $CALLCOACH_FONT, else the first of [`CJK_FONTS`].
pub fn find_cjk_font(explicit: Option<&std::path::Path>) -> Option<PathBuf> {
    explicit
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("CALLCOACH_FONT").map(PathBuf::from))
        .into_iter()
        .chain(CJK_FONTS.iter().map(PathBuf::from))
        .find(|p| p.is_file())
}

/// A warning on screen.
struct Shown {
    warning: Warning,
    since: Instant,
}

struct Overlay {
    events: Receiver<ScreenEvent>,
    hotkeys: Sender<Hotkey>,
    opts: OverlayOptions,
    shown: BTreeMap<String, Shown>,
    nudges: Vec<(String, Instant)>,
    meters: MeterView,
    status: Vec<String>,
    frames: u64,
    ended: Option<Instant>,
    mode: Mode,
    remembered: Remembered,
    /// The placement last seen, and since when it has not changed (saved once it settles).
    placement: Option<(Placement, Instant)>,
    saved: Option<Placement>,
    /// Clicks pass through to the window below (nothing to show).
    passthrough: Option<bool>,
}

impl Overlay {
    fn take_events(&mut self, ctx: &egui::Context) {
        while let Ok(e) = self.events.try_recv() {
            match e {
                ScreenEvent::Warning(w) => {
                    if w.hidden.is_some() {
                        continue;
                    }
                    match w.state {
                        WarningState::Raised => {
                            self.shown.insert(
                                w.id.clone(),
                                Shown {
                                    warning: *w,
                                    since: Instant::now(),
                                },
                            );
                        }
                        WarningState::Updated => {
                            if let Some(s) = self.shown.get_mut(&w.id) {
                                s.warning = *w;
                            }
                        }
                        WarningState::Cleared | WarningState::Withdrawn => {
                            self.shown.remove(&w.id);
                        }
                    }
                }
                ScreenEvent::Meters(m) => self.meters = m,
                ScreenEvent::Nudge { text, clear_after } => {
                    self.nudges.push((text, Instant::now() + clear_after))
                }
                ScreenEvent::Status(s) => {
                    self.status.push(s);
                    if self.status.len() > 3 {
                        self.status.remove(0);
                    }
                }
                ScreenEvent::End => {
                    self.ended.get_or_insert_with(Instant::now);
                }
            }
        }
        let now = Instant::now();
        self.nudges.retain(|n| n.1 > now);
        if self
            .ended
            .is_some_and(|t| t.elapsed() > Duration::from_secs(3))
        {
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        }
    }

    fn keys(&mut self, ctx: &egui::Context) {
        let (f6, f7, f8, f9, f10) = ctx.input(|i| {
            (
                i.key_pressed(egui::Key::F6),
                i.key_pressed(egui::Key::F7),
                i.key_pressed(egui::Key::F8),
                i.key_pressed(egui::Key::F9),
                i.key_pressed(egui::Key::F10),
            )
        });
        if f7 {
            self.switch_mode(ctx);
        }
        if f6 {
            let _ = self.hotkeys.try_send(Hotkey::Help);
        }
        if f9 {
            let _ = self.hotkeys.try_send(Hotkey::CallStart);
        }
        if f10 {
            let _ = self.hotkeys.try_send(Hotkey::CallEnd);
        }
        if f8 {
            let _ = self.hotkeys.try_send(Hotkey::HoldToggle);
        }
    }

    /// The warning to show in the compact bar: the most severe, then the newest.
    fn most_urgent(&self) -> Option<&Shown> {
        self.shown
            .values()
            .max_by_key(|s| (s.warning.severity, s.since))
    }

    fn switch_mode(&mut self, ctx: &egui::Context) {
        if let Some((p, _)) = self.placement {
            self.remembered.set(self.mode, p);
        }
        self.mode = self.mode.other();
        self.remembered.mode = Some(self.mode);
        let size = self
            .remembered
            .placement(self.mode)
            .map_or(self.mode.default_size(), |p| [p.w, p.h]);
        ctx.send_viewport_cmd(egui::ViewportCommand::InnerSize(size.into()));
        if let Some(p) = self.remembered.placement(self.mode) {
            ctx.send_viewport_cmd(egui::ViewportCommand::OuterPosition(egui::pos2(p.x, p.y)));
        }
        self.placement = None;
        self.save();
    }

    /// Notes where the window is; saves it once it has stayed put for a second.
    fn track_placement(&mut self, ctx: &egui::Context) {
        let (outer, inner) = ctx.input(|i| (i.viewport().outer_rect, i.viewport().inner_rect));
        let (Some(outer), Some(inner)) = (outer, inner) else {
            return;
        };
        let p = Placement {
            x: outer.min.x,
            y: outer.min.y,
            w: inner.width(),
            h: inner.height(),
        };
        match self.placement {
            Some((q, _)) if q == p => {}
            _ => self.placement = Some((p, Instant::now())),
        }
        if let Some((p, since)) = self.placement {
            if since.elapsed() > Duration::from_secs(1) && self.saved != Some(p) {
                self.remembered.set(self.mode, p);
                self.remembered.mode = Some(self.mode);
                self.saved = Some(p);
                self.save();
            }
        }
    }

    fn save(&mut self) {
        if let Some(path) = &self.opts.state_file {
            if let Err(e) = self.remembered.save(path) {
                self.status.push(format!("window place not saved: {e}"));
            }
        }
    }

    /// Clicks go through to the CRM while a call runs and there is nothing to read or press.
    /// Before a call the window takes clicks (F9 starts one); during one its title bar (the
    /// window manager's) still takes a click to focus it for F10 and F8.
    fn click_through(&mut self, ctx: &egui::Context) {
        let idle = self.meters.in_call && self.shown.is_empty() && self.nudges.is_empty();
        if self.passthrough != Some(idle) {
            self.passthrough = Some(idle);
            ctx.send_viewport_cmd(egui::ViewportCommand::MousePassthrough(idle));
        }
    }

    fn compact_ui(&self, ui: &mut egui::Ui) {
        let m = &self.meters;
        ui.horizontal_centered(|ui| {
            let lufs = m.loudness_lufs[0];
            let text = match (m.lost[0], lufs) {
                (true, _) => "设备断开".to_string(),
                (false, Some(v)) => format!("响度 {v:.0}"),
                (false, None) => "响度 –".to_string(),
            };
            draw::band_meter(
                ui,
                120.0,
                lufs,
                (-50.0, -5.0),
                self.opts.loudness_band,
                &text,
            );
            let cpm = m.chars_per_minute[0];
            let approx = if m.rate_from_text[0] { "" } else { "≈" };
            let text = cpm.map_or("语速 –".to_string(), |c| format!("语速 {approx}{c:.0}"));
            draw::band_meter(ui, 120.0, cpm, (0.0, 240.0), self.opts.rate_band, &text);
            let nudge = self.nudges.first();
            match (self.most_urgent(), nudge) {
                (Some(s), _) if s.warning.severity == Severity::Critical || nudge.is_none() => {
                    ui.allocate_ui(egui::vec2(ui.available_width() - 250.0, 40.0), |ui| {
                        draw::banner(ui, &s.warning, s.since, false)
                    });
                }
                (_, Some((text, _))) => {
                    ui.allocate_ui(egui::vec2(ui.available_width() - 250.0, 40.0), |ui| {
                        ui.colored_label(
                            egui::Color32::from_rgb(0xC0, 0x90, 0xFF),
                            format!("主管提示：{text}"),
                        );
                    });
                }
                _ => {
                    ui.add_space((ui.available_width() - 250.0).max(0.0));
                }
            }
            draw::checklist(ui, &m.checklist, 14.0);
        });
    }

    fn full_ui(&self, ui: &mut egui::Ui) {
        let m = &self.meters;
        let (lo, hi) = self.opts.rate_band;
        egui::Grid::new("meters").num_columns(3).show(ui, |ui| {
            ui.label("");
            ui.strong("坐席 agent");
            ui.strong("客户 caller");
            ui.end_row();
            ui.label("响度 LUFS");
            for i in 0..2 {
                let speaking = if m.speaking[i] { " ●" } else { "" };
                match (m.lost[i], m.loudness_lufs[i]) {
                    (true, _) => {
                        ui.label("设备断开 lost");
                    }
                    // Only the agent's own figures are judged against the agent's band.
                    (false, Some(v)) if i == 0 => {
                        ui.colored_label(
                            draw::judged(v, self.opts.loudness_band),
                            format!("{v:.0}{speaking}"),
                        );
                    }
                    (false, Some(v)) => {
                        ui.label(format!("{v:.0}{speaking}"));
                    }
                    (false, None) => {
                        ui.label(format!("–{speaking}"));
                    }
                }
            }
            ui.end_row();
            ui.label("语速 字/分");
            for i in 0..2 {
                let approx = if m.rate_from_text[i] { "" } else { "≈" };
                match m.chars_per_minute[i] {
                    Some(c) if i == 0 => {
                        ui.colored_label(
                            draw::judged(c, self.opts.rate_band),
                            format!("{approx}{c:.0} ({lo:.0}–{hi:.0})"),
                        );
                    }
                    Some(c) => {
                        ui.label(format!("{approx}{c:.0}"));
                    }
                    None => {
                        ui.label("–");
                    }
                }
            }
            ui.end_row();
        });
        ui.horizontal(|ui| {
            if let Some(r) = m.agent_talk_ratio {
                ui.label(format!("说话占比 {:.0} %", r * 100.0));
            }
            ui.label(format!("静音 {:.0} s", m.silence_s));
            if let Some(h) = m.hold_s {
                ui.label(format!("保持 {h:.0} s"));
            }
            if m.in_call {
                ui.label(format!(
                    "通话 {:.0}:{:02.0}",
                    (m.call_s / 60.0).floor(),
                    m.call_s % 60.0
                ));
            } else {
                ui.label("无通话 no call");
            }
        });
        draw::checklist(ui, &m.checklist, 15.0);
        ui.separator();
        let mut any = false;
        for s in self.shown.values() {
            any = true;
            draw::banner(ui, &s.warning, s.since, true);
            ui.add_space(4.0);
        }
        for (text, _) in &self.nudges {
            any = true;
            egui::Frame::new()
                .fill(egui::Color32::from_rgb(0x80, 0x40, 0xC0))
                .inner_margin(8.0)
                .show(ui, |ui| {
                    ui.set_width(ui.available_width());
                    ui.label(
                        egui::RichText::new(format!("主管提示：{text}"))
                            .size(18.0)
                            .color(egui::Color32::WHITE),
                    );
                });
        }
        if !any {
            ui.label("✓");
        }
        ui.separator();
        for s in &self.status {
            ui.small(s);
        }
        if ui.button("求助 Help (F6)").clicked() {
            let _ = self.hotkeys.try_send(Hotkey::Help);
        }
        ui.small("F9 开始通话 · F10 结束通话 · F8 保持 · F7 紧凑/完整 · F6 求助");
    }
}

impl eframe::App for Overlay {
    fn update(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.frames += 1;
        // Always-on-top only takes once the window is mapped: send it again after the first
        // frames (window managers ignore the initial hint).
        if self.frames == 2 || self.frames == 30 {
            ctx.send_viewport_cmd(egui::ViewportCommand::WindowLevel(
                egui::WindowLevel::AlwaysOnTop,
            ));
        }
        self.take_events(ctx);
        self.keys(ctx);
        self.click_through(ctx);
        if self.frames > 30 {
            self.track_placement(ctx);
        }
        egui::CentralPanel::default().show(ctx, |ui| match self.mode {
            Mode::Compact => self.compact_ui(ui),
            Mode::Full => self.full_ui(ui),
        });
        // Flashing and meters need frames even without input.
        ctx.request_repaint_after(Duration::from_millis(50));
    }
}

/// Opens the overlay and runs it on the calling thread (the main thread: some platforms
/// insist) until the window is closed or [`ScreenEvent::End`] arrives.
pub fn run(
    events: Receiver<ScreenEvent>,
    hotkeys: Sender<Hotkey>,
    opts: OverlayOptions,
) -> Result<(), OverlayError> {
    let font = find_cjk_font(opts.cjk_font.as_deref());
    let remembered = opts
        .state_file
        .as_deref()
        .map(Remembered::load)
        .unwrap_or_default();
    let mode = opts.mode.or(remembered.mode).unwrap_or_default();
    let place = remembered.placement(mode);
    let mut viewport = egui::ViewportBuilder::default()
        .with_title("callcoach")
        .with_inner_size(place.map_or(mode.default_size(), |p| [p.w, p.h]))
        .with_always_on_top();
    if let Some(p) = place {
        viewport = viewport.with_position([p.x, p.y]);
    }
    let native = eframe::NativeOptions {
        viewport,
        renderer: eframe::Renderer::Glow,
        ..Default::default()
    };
    let mut status = Vec::new();
    if font.is_none() {
        status.push(
            "no Chinese font found: install fonts-wqy-microhei (Debian) or set CALLCOACH_FONT"
                .into(),
        );
    }
    eframe::run_native(
        "callcoach",
        native,
        Box::new(move |cc| {
            if let Some(bytes) = font.as_ref().and_then(|p| std::fs::read(p).ok()) {
                let mut fonts = egui::FontDefinitions::default();
                fonts.font_data.insert(
                    "cjk".into(),
                    std::sync::Arc::new(egui::FontData::from_owned(bytes)),
                );
                for family in [egui::FontFamily::Proportional, egui::FontFamily::Monospace] {
                    fonts.families.entry(family).or_default().push("cjk".into());
                }
                cc.egui_ctx.set_fonts(fonts);
            }
            cc.egui_ctx.set_visuals(egui::Visuals::dark());
            Ok(Box::new(Overlay {
                events,
                hotkeys,
                opts,
                shown: BTreeMap::new(),
                nudges: Vec::new(),
                meters: MeterView::default(),
                status,
                frames: 0,
                ended: None,
                mode,
                remembered,
                placement: None,
                saved: place,
                passthrough: None,
            }))
        }),
    )
    .map_err(|e| OverlayError::Window(e.to_string()))
}
