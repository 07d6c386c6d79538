//! The agent's overlay: a small always-on-top window beside the CRM with live meters
//! (loudness per party, characters per minute against the target band, talk ratio, silence
//! and hold timers) and, for each shown warning, a flashing banner coloured by severity with
//! the short message and the line to say. Cleared warnings stop flashing and go.
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
}

/// Keys pressed in the overlay (F9 start call, F10 end call, F8 hold on/off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Hotkey {
    CallStart,
    CallEnd,
    HoldToggle,
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
    /// Font with Chinese glyphs; searched for when `None`.
    pub cjk_font: Option<PathBuf>,
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
}

fn severity_colour(s: Severity) -> egui::Color32 {
    match s {
        Severity::Critical => egui::Color32::from_rgb(0xD0, 0x20, 0x20),
        Severity::Warning => egui::Color32::from_rgb(0xFF, 0xB0, 0x00),
        _ => egui::Color32::from_rgb(0x20, 0x70, 0xD0),
    }
}

/// Flash at 2 Hz for the first 6 s, then stay lit (a warning keeps showing until cleared).
fn lit(since: Instant) -> bool {
    let t = since.elapsed().as_secs_f32();
    t > 6.0 || ((t * 4.0) as u32).is_multiple_of(2)
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
        let (f8, f9, f10) = ctx.input(|i| {
            (
                i.key_pressed(egui::Key::F8),
                i.key_pressed(egui::Key::F9),
                i.key_pressed(egui::Key::F10),
            )
        });
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

    fn meters_ui(&self, ui: &mut egui::Ui) {
        let m = &self.meters;
        let (lo, hi) = self.opts.rate_band;
        let lufs = |x: Option<f32>| x.map_or("–".to_string(), |v| format!("{v:.0}"));
        egui::Grid::new("meters").num_columns(3).show(ui, |ui| {
            ui.label("");
            ui.strong("坐席 agent");
            ui.strong("客户 caller");
            ui.end_row();
            ui.label("响度 LUFS");
            for i in 0..2 {
                let t = if m.lost[i] {
                    "设备断开 lost".to_string()
                } else {
                    lufs(m.loudness_lufs[i])
                };
                let speaking = if m.speaking[i] { " ●" } else { "" };
                ui.label(format!("{t}{speaking}"));
            }
            ui.end_row();
            ui.label("语速 字/分");
            for i in 0..2 {
                match m.chars_per_minute[i] {
                    Some(c) => {
                        let colour = if c > hi || c < lo {
                            egui::Color32::from_rgb(0xFF, 0x80, 0x40)
                        } else {
                            egui::Color32::from_rgb(0x40, 0xC0, 0x60)
                        };
                        let approx = if m.rate_from_text[i] { "" } else { "≈" };
                        ui.colored_label(colour, format!("{approx}{c:.0} ({lo:.0}–{hi:.0})"));
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
        egui::CentralPanel::default().show(ctx, |ui| {
            self.meters_ui(ui);
            ui.separator();
            let mut any = false;
            for s in self.shown.values() {
                any = true;
                let w = &s.warning;
                let colour = severity_colour(w.severity);
                let fill = if lit(s.since) {
                    colour
                } else {
                    colour.gamma_multiply(0.35)
                };
                egui::Frame::new()
                    .fill(fill)
                    .inner_margin(8.0)
                    .corner_radius(4.0)
                    .show(ui, |ui| {
                        ui.set_width(ui.available_width());
                        ui.label(
                            egui::RichText::new(&w.message_zh)
                                .size(22.0)
                                .strong()
                                .color(egui::Color32::BLACK),
                        );
                        ui.label(
                            egui::RichText::new(format!("参考话术：{}", w.line))
                                .size(16.0)
                                .color(egui::Color32::BLACK),
                        );
                    });
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
            ui.small("F9 开始通话 · F10 结束通话 · F8 保持");
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
    let native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("callcoach")
            .with_inner_size([460.0, 360.0])
            .with_always_on_top(),
        renderer: eframe::Renderer::Glow,
        ..Default::default()
    };
    let mut status = Vec::new();
    match &font {
        Some(p) => status.push(format!("font: {}", p.display())),
        None => status.push(
            "no Chinese font found: install fonts-wqy-microhei (Debian) or set CALLCOACH_FONT"
                .into(),
        ),
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
            }))
        }),
    )
    .map_err(|e| OverlayError::Window(e.to_string()))
}
