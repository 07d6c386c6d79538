//! Drawing: band meters, warning banners, the checklist. Pure functions of what is shown.

use std::time::Instant;

use callcoach_coach::{FlowStep, Severity, Warning};
use eframe::egui;

pub(crate) const IN_BAND: egui::Color32 = egui::Color32::from_rgb(0x40, 0xC0, 0x60);
pub(crate) const OUT_OF_BAND: egui::Color32 = egui::Color32::from_rgb(0xFF, 0x80, 0x40);
const NEUTRAL: egui::Color32 = egui::Color32::from_rgb(0x90, 0x90, 0x90);

pub(crate) fn severity_colour(s: Severity) -> egui::Color32 {
    match s {
        Severity::Critical => egui::Color32::from_rgb(0xD0, 0x20, 0x20),
        Severity::Warning => egui::Color32::from_rgb(0xFF, 0xB0, 0x00),
        _ => egui::Color32::from_rgb(0x20, 0x70, 0xD0),
    }
}

/// Flash at 2 Hz for the first 6 s, then stay lit (a warning keeps showing until cleared).
pub(crate) fn lit(since: Instant) -> bool {
    let t = since.elapsed().as_secs_f32();
    t > 6.0 || ((t * 4.0) as u32).is_multiple_of(2)
}

/// The colour of a figure against its band: only the agent's own figures are judged.
pub(crate) fn judged(value: f32, band: (f32, f32)) -> egui::Color32 {
    if value < band.0 || value > band.1 {
        OUT_OF_BAND
    } else {
        IN_BAND
    }
}

/// A horizontal meter: the scale `range`, the target `band` shaded, the value as a bar
/// coloured against the band, and `text` on top.
pub(crate) fn band_meter(
    ui: &mut egui::Ui,
    width: f32,
    value: Option<f32>,
    range: (f32, f32),
    band: (f32, f32),
    text: &str,
) {
    let (rect, _) = ui.allocate_exact_size(egui::vec2(width, 22.0), egui::Sense::hover());
    let p = ui.painter_at(rect);
    p.rect_filled(rect, 3.0, egui::Color32::from_gray(0x30));
    let x = |v: f32| {
        let t = ((v - range.0) / (range.1 - range.0)).clamp(0.0, 1.0);
        rect.left() + t * rect.width()
    };
    let band_rect = egui::Rect::from_x_y_ranges(x(band.0)..=x(band.1), rect.y_range());
    p.rect_filled(
        band_rect,
        0.0,
        egui::Color32::from_rgba_unmultiplied(0x40, 0xC0, 0x60, 0x40),
    );
    if let Some(v) = value {
        let bar = egui::Rect::from_x_y_ranges(
            rect.left()..=x(v),
            (rect.top() + 4.0)..=(rect.bottom() - 4.0),
        );
        p.rect_filled(bar, 2.0, judged(v, band));
    }
    p.text(
        rect.left_center() + egui::vec2(6.0, 0.0),
        egui::Align2::LEFT_CENTER,
        text,
        egui::FontId::proportional(14.0),
        egui::Color32::WHITE,
    );
}

/// A warning banner: the message, and the line to say when `with_line`.
pub(crate) fn banner(ui: &mut egui::Ui, w: &Warning, since: Instant, big: bool) {
    let colour = severity_colour(w.severity);
    let fill = if lit(since) {
        colour
    } else {
        colour.gamma_multiply(0.35)
    };
    egui::Frame::new()
        .fill(fill)
        .inner_margin(if big { 8.0 } else { 4.0 })
        .corner_radius(4.0)
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            if big {
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
            } else {
                let line = if w.line.is_empty() {
                    String::new()
                } else {
                    format!(" — {}", w.line)
                };
                ui.add(
                    egui::Label::new(
                        egui::RichText::new(format!("{}{line}", w.message_zh))
                            .size(16.0)
                            .strong()
                            .color(egui::Color32::BLACK),
                    )
                    .truncate(),
                );
            }
        });
}

/// The call-flow checklist: 问候 ✓ · 确认需求 ☐ …
pub(crate) fn checklist(ui: &mut egui::Ui, done: &[bool; 4], size: f32) {
    ui.horizontal(|ui| {
        ui.spacing_mut().item_spacing.x = 6.0;
        for (step, d) in FlowStep::ALL.iter().zip(done) {
            let (mark, colour) = if *d {
                ("✓", IN_BAND)
            } else {
                ("☐", NEUTRAL)
            };
            ui.label(
                egui::RichText::new(format!("{}{mark}", step.label()))
                    .size(size)
                    .color(colour),
            );
        }
    });
}
