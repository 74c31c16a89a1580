//! A hunt drawn on the server's world (`veltrix-server preview`): ground, rock and water; the
//! spawn; every vault where the pack placed it (the server's own placement); the groups'
//! regions; sparkle radii and clue circles; optionally the walking-distance field that HotCold
//! and Compass hints use. A legend and a scale beside it.
//!
//! The map is at most [`MAP_PIXELS`] wide or deep: small worlds get whole pixels per tile,
//! large ones are sampled down (a 2048 x 2048 world at half a pixel per tile). Markers have a
//! fixed size in pixels, whatever the scale, so vaults stay visible. In PNG, text (the legend,
//! the fixed vaults' numbers) uses the public-domain 8 x 8 bitmap font of the `font8x8` crate,
//! and the encoding is the `png` crate's. In SVG (the `svg` crate), the same shapes are SVG
//! elements and the text is text; the tiles are an embedded PNG picture.

use std::io::Write;

use base64::Engine as _;

use treasure_hunt_ecs::model::{
    assets::{ClaimRule, ClueKind, ClueTrigger, Region, TilePos, VaultSpec},
    distance::DistanceField,
    pack::{PlacedHunt, PlacedVault},
};
use veltrix_sdk::{Spawn, Tile, TileWorld};

/// The longest side of the map, in pixels.
pub const MAP_PIXELS: u32 = 1024;
const MARGIN: u32 = 16;
const LEGEND_WIDTH: u32 = 400;
const LINE: u32 = 12;
/// The side of a fixed vault's square and the diameter of a group vault's disc, in pixels.
const MARKER: i64 = 9;

type Rgb = [u8; 3];

const BACKGROUND: Rgb = [250, 248, 240];
const INK: Rgb = [20, 20, 20];
const GROUND: Rgb = [196, 214, 160];
const GROUND_WALLED: Rgb = [150, 160, 130];
const ROCK: Rgb = [120, 116, 110];
const WATER: Rgb = [70, 130, 200];
const SPAWN: Rgb = [255, 255, 255];
const SPARKLE: Rgb = [255, 230, 60];
const AREA: Rgb = [200, 0, 160];
const ENTER: Rgb = [0, 200, 220];
const GROUPS: [Rgb; 6] = [[0, 140, 120], [230, 30, 100], [130, 80, 60], [60, 80, 190], [180, 200, 40], [0, 180, 210]];

pub(crate) fn rule_colour(rule: ClaimRule) -> Rgb {
    match rule {
        ClaimRule::FirstFinder => [220, 40, 40],
        ClaimRule::PerPlayer => [40, 90, 230],
        ClaimRule::FirstFinderThenPerPlayer => [250, 150, 0],
        ClaimRule::Team => [150, 60, 200],
    }
}

/// Where the map sits in the picture and how many pixels a tile takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Layout {
    pub pixels_per_tile: f64,
    pub map_width: u32,
    pub map_depth: u32,
}

impl Layout {
    pub fn of(tiles: &TileWorld) -> Self {
        let longest = tiles.width().max(tiles.depth()).max(1);
        let pixels_per_tile = if longest <= MAP_PIXELS {
            f64::from(MAP_PIXELS / longest)
        } else {
            f64::from(MAP_PIXELS) / f64::from(longest)
        };
        let side = |tiles: u32| ((f64::from(tiles) * pixels_per_tile).ceil() as u32).max(1);
        Layout { pixels_per_tile, map_width: side(tiles.width()), map_depth: side(tiles.depth()) }
    }

    /// The pixel of the picture at the centre of a tile (where its marker is centred).
    pub fn tile_pixel(&self, at: TilePos) -> (u32, u32) {
        (MARGIN + self.pixels_of(f64::from(at.x) + 0.5), MARGIN + self.pixels_of(f64::from(at.y) + 0.5))
    }

    fn pixels_of(&self, tiles: f64) -> u32 {
        (tiles * self.pixels_per_tile).floor() as u32
    }

    /// A point of the world (in tiles) as a point of the picture.
    fn point(&self, x: f64, y: f64) -> (f64, f64) {
        (f64::from(MARGIN) + x * self.pixels_per_tile, f64::from(MARGIN) + y * self.pixels_per_tile)
    }
}

/// An RGB picture.
pub struct Canvas {
    pub width: u32,
    pub height: u32,
    pixels: Vec<u8>,
    /// Drawing stays inside this box (x, y, width, height) when set: the map's circles stop
    /// at its edge.
    clip: Option<(i64, i64, i64, i64)>,
}

impl Canvas {
    fn new(width: u32, height: u32) -> Self {
        let mut pixels = Vec::with_capacity(width as usize * height as usize * 3);
        for _ in 0..width as usize * height as usize {
            pixels.extend_from_slice(&BACKGROUND);
        }
        Canvas { width, height, pixels, clip: None }
    }

    /// The pixel at (x, y).
    pub fn pixel(&self, x: u32, y: u32) -> Rgb {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.pixels[i], self.pixels[i + 1], self.pixels[i + 2]]
    }

    fn set(&mut self, x: i64, y: i64, colour: Rgb) {
        if x < 0 || y < 0 || x >= i64::from(self.width) || y >= i64::from(self.height) {
            return;
        }
        if let Some((cx, cy, cw, ch)) = self.clip
            && (x < cx || y < cy || x >= cx + cw || y >= cy + ch)
        {
            return;
        }
        let i = (y as usize * self.width as usize + x as usize) * 3;
        self.pixels[i..i + 3].copy_from_slice(&colour);
    }

    /// The picture as PNG (8-bit RGB).
    pub fn write_png(&self, out: impl Write) -> Result<(), String> {
        let mut encoder = png::Encoder::new(out, self.width, self.height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
        writer.write_image_data(&self.pixels).map_err(|e| e.to_string())?;
        writer.finish().map_err(|e| e.to_string())
    }
}

/// What the preview draws with: the PNG's pixels ([`Canvas`]) or the SVG's elements
/// ([`SvgPen`]). Positions and sizes are in pixels of the picture.
pub trait Pen {
    fn fill(&mut self, x: i64, y: i64, w: i64, h: i64, colour: Rgb);
    /// A rectangle's edge, `thickness` pixels wide inside it.
    fn outline(&mut self, x: i64, y: i64, w: i64, h: i64, thickness: i64, colour: Rgb);
    /// A circle's outline, `thickness` pixels wide, centred on (cx, cy).
    fn ring(&mut self, cx: f64, cy: f64, r: f64, thickness: f64, colour: Rgb);
    fn disc(&mut self, cx: i64, cy: i64, diameter: i64, colour: Rgb);
    /// A line of text, its top left at (x, y), 8 pixels a character.
    fn text(&mut self, x: i64, y: i64, text: &str, colour: Rgb);
    /// The spawn's marker: a white diamond with an ink edge, `r` pixels from its centre.
    fn diamond(&mut self, cx: i64, cy: i64, r: i64);
    /// What follows is drawn only inside this box (x, y, width, height), or anywhere.
    fn clip(&mut self, area: Option<(i64, i64, i64, i64)>);
}

impl Pen for Canvas {
    fn fill(&mut self, x: i64, y: i64, w: i64, h: i64, colour: Rgb) {
        for yy in y..y + h {
            for xx in x..x + w {
                self.set(xx, yy, colour);
            }
        }
    }

    fn outline(&mut self, x: i64, y: i64, w: i64, h: i64, thickness: i64, colour: Rgb) {
        self.fill(x, y, w, thickness, colour);
        self.fill(x, y + h - thickness, w, thickness, colour);
        self.fill(x, y, thickness, h, colour);
        self.fill(x + w - thickness, y, thickness, h, colour);
    }

    fn ring(&mut self, cx: f64, cy: f64, r: f64, thickness: f64, colour: Rgb) {
        let reach = (r + thickness).ceil() as i64 + 1;
        let (px, py) = (cx.floor() as i64, cy.floor() as i64);
        for y in py - reach..=py + reach {
            for x in px - reach..=px + reach {
                let d = ((x as f64 + 0.5 - cx).powi(2) + (y as f64 + 0.5 - cy).powi(2)).sqrt();
                if (d - r).abs() <= thickness / 2.0 {
                    self.set(x, y, colour);
                }
            }
        }
    }

    fn disc(&mut self, cx: i64, cy: i64, diameter: i64, colour: Rgb) {
        let r = diameter as f64 / 2.0;
        for y in -diameter..=diameter {
            for x in -diameter..=diameter {
                if ((x as f64).powi(2) + (y as f64).powi(2)).sqrt() <= r {
                    self.set(cx + x, cy + y, colour);
                }
            }
        }
    }

    // ASCII in the 8 x 8 font; other characters as `?`.
    fn text(&mut self, x: i64, y: i64, text: &str, colour: Rgb) {
        for (n, c) in text.chars().enumerate() {
            let glyph = font8x8::legacy::BASIC_LEGACY[if c.is_ascii() { c as usize } else { '?' as usize }];
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8 {
                    if bits & (1 << col) != 0 {
                        self.set(x + n as i64 * 8 + col, y + row as i64, colour);
                    }
                }
            }
        }
    }

    fn diamond(&mut self, cx: i64, cy: i64, r: i64) {
        for ring in 0..=r {
            let colour = if ring == r { INK } else { SPAWN };
            for d in -ring..=ring {
                let h = ring - d.abs();
                self.set(cx + d, cy - h, colour);
                self.set(cx + d, cy + h, colour);
            }
        }
    }

    fn clip(&mut self, area: Option<(i64, i64, i64, i64)>) {
        self.clip = area;
    }
}

/// What to draw.
pub struct Preview<'a> {
    pub hunt: &'a PlacedHunt,
    pub tiles: &'a TileWorld,
    pub spawn: Spawn,
    /// The vault whose walking-distance field colours the ground.
    pub distance: Option<&'a PlacedVault>,
}

/// An entry of the hunt's `Vaults` with the vaults placed for it.
struct Entry<'a> {
    spec: &'a VaultSpec,
    vaults: Vec<&'a PlacedVault>,
}

fn entries(hunt: &PlacedHunt) -> Vec<Entry<'_>> {
    hunt.def
        .vaults
        .iter()
        .map(|spec| {
            let vaults = hunt
                .vaults
                .iter()
                .filter(|v| match spec.count {
                    None => v.id == spec.id,
                    Some(_) => v.id.strip_prefix(spec.id.as_str()).and_then(|r| r.strip_prefix('_')).is_some_and(|n| {
                        n.parse::<u32>().is_ok_and(|k| k.to_string() == n && spec.count.is_some_and(|c| k <= c))
                    }),
                })
                .collect();
            Entry { spec, vaults }
        })
        .collect()
}

/// The picture's size and the legend, worked out once for either format.
struct Plan<'a> {
    layout: Layout,
    entries: Vec<Entry<'a>>,
    legend: Vec<LegendLine>,
    width: u32,
    height: u32,
}

fn plan<'a>(preview: &Preview<'a>) -> Plan<'a> {
    let layout = Layout::of(preview.tiles);
    let entries = entries(preview.hunt);
    let legend = legend_lines(preview, &entries);
    let map_bottom = MARGIN + layout.map_depth + 48;
    let legend_bottom = MARGIN + legend.len() as u32 * LINE + MARGIN;
    let width = MARGIN + layout.map_width + MARGIN + LEGEND_WIDTH + MARGIN;
    Plan { layout, entries, legend, width, height: map_bottom.max(legend_bottom) }
}

/// Draws the preview as pixels (for PNG).
pub fn draw(preview: &Preview) -> Canvas {
    let plan = plan(preview);
    let mut canvas = Canvas::new(plan.width, plan.height);
    let field = preview.distance.map(|v| DistanceField::compute(preview.tiles, v.at));
    draw_tiles(&mut canvas, preview.tiles, &plan.layout, field.as_ref(), MARGIN);
    draw_on(&mut canvas, preview, &plan);
    canvas
}

/// Draws the preview as SVG: the tiles as an embedded PNG picture (a world is up to millions
/// of tiles), everything else as SVG shapes and text.
pub fn draw_svg(preview: &Preview) -> Result<(String, (u32, u32)), String> {
    let plan = plan(preview);
    let layout = &plan.layout;
    let mut tiles = Canvas::new(layout.map_width, layout.map_depth);
    let field = preview.distance.map(|v| DistanceField::compute(preview.tiles, v.at));
    draw_tiles(&mut tiles, preview.tiles, layout, field.as_ref(), 0);
    let mut png = Vec::new();
    tiles.write_png(&mut png)?;
    let mut pen = SvgPen::new(plan.width, plan.height);
    pen.add(
        svg::node::element::Image::new()
            .set("x", MARGIN)
            .set("y", MARGIN)
            .set("width", layout.map_width)
            .set("height", layout.map_depth)
            .set("style", "image-rendering: pixelated")
            .set("href", format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(png))),
    );
    draw_on(&mut pen, preview, &plan);
    Ok((pen.finish(), (plan.width, plan.height)))
}

/// Everything but the tiles.
fn draw_on(canvas: &mut impl Pen, preview: &Preview, plan: &Plan) {
    let layout = &plan.layout;
    let (w, d) = (i64::from(layout.map_width), i64::from(layout.map_depth));
    canvas.outline(i64::from(MARGIN) - 1, i64::from(MARGIN) - 1, w + 2, d + 2, 1, INK);
    canvas.clip(Some((i64::from(MARGIN), i64::from(MARGIN), w, d)));
    draw_overlays(canvas, preview, layout, &plan.entries);
    canvas.clip(None);
    draw_scale(canvas, preview.tiles, layout);
    let x = i64::from(MARGIN + layout.map_width + MARGIN);
    for (n, line) in plan.legend.iter().enumerate() {
        let y = i64::from(MARGIN + n as u32 * LINE);
        match line.swatch {
            Swatch::None => {}
            Swatch::Fill(c) => {
                canvas.fill(x, y, 9, 9, c);
                canvas.outline(x, y, 9, 9, 1, INK);
            }
            Swatch::Square(c) => {
                canvas.fill(x, y, MARKER, MARKER, c);
                canvas.outline(x, y, MARKER, MARKER, 1, INK);
            }
            Swatch::Disc(c) => {
                canvas.disc(x + 4, y + 4, MARKER + 2, INK);
                canvas.disc(x + 4, y + 4, MARKER, c);
            }
            Swatch::Ring(c) => canvas.ring(x as f64 + 4.5, y as f64 + 4.5, 4.0, 1.5, c),
            Swatch::Ramp => {
                for i in 0..120 {
                    canvas.fill(x + i, y, 1, 9, ramp(i as f64 / 119.0));
                }
            }
        }
        let indent = if matches!(line.swatch, Swatch::Ramp) { 126 } else { 14 };
        canvas.text(x + indent, y + 1, &line.text, INK);
    }
}

/// The SVG document being drawn.
pub struct SvgPen {
    document: svg::Document,
    /// The group of shapes clipped to the map, while there is one.
    clipped: Option<svg::node::element::Group>,
    clips: u32,
}

fn css(colour: Rgb) -> String {
    format!("#{:02x}{:02x}{:02x}", colour[0], colour[1], colour[2])
}

impl SvgPen {
    fn new(width: u32, height: u32) -> Self {
        let document =
            svg::Document::new().set("width", width).set("height", height).set("viewBox", (0, 0, width, height)).add(
                svg::node::element::Rectangle::new()
                    .set("width", width)
                    .set("height", height)
                    .set("fill", css(BACKGROUND)),
            );
        SvgPen { document, clipped: None, clips: 0 }
    }

    fn add(&mut self, node: impl Into<Box<dyn svg::Node>>) {
        use svg::Node;
        match &mut self.clipped {
            Some(group) => group.append(node),
            None => self.document.append(node),
        }
    }

    fn finish(mut self) -> String {
        self.clip(None);
        self.document.to_string() + "\n"
    }
}

impl Pen for SvgPen {
    fn fill(&mut self, x: i64, y: i64, w: i64, h: i64, colour: Rgb) {
        self.add(
            svg::node::element::Rectangle::new()
                .set("x", x)
                .set("y", y)
                .set("width", w)
                .set("height", h)
                .set("fill", css(colour)),
        );
    }

    fn outline(&mut self, x: i64, y: i64, w: i64, h: i64, thickness: i64, colour: Rgb) {
        let t = thickness as f64;
        self.add(
            svg::node::element::Rectangle::new()
                .set("x", x as f64 + t / 2.0)
                .set("y", y as f64 + t / 2.0)
                .set("width", w as f64 - t)
                .set("height", h as f64 - t)
                .set("fill", "none")
                .set("stroke", css(colour))
                .set("stroke-width", t),
        );
    }

    fn ring(&mut self, cx: f64, cy: f64, r: f64, thickness: f64, colour: Rgb) {
        self.add(
            svg::node::element::Circle::new()
                .set("cx", cx)
                .set("cy", cy)
                .set("r", r)
                .set("fill", "none")
                .set("stroke", css(colour))
                .set("stroke-width", thickness),
        );
    }

    fn disc(&mut self, cx: i64, cy: i64, diameter: i64, colour: Rgb) {
        self.add(
            svg::node::element::Circle::new()
                .set("cx", cx as f64 + 0.5)
                .set("cy", cy as f64 + 0.5)
                .set("r", diameter as f64 / 2.0)
                .set("fill", css(colour)),
        );
    }

    fn text(&mut self, x: i64, y: i64, text: &str, colour: Rgb) {
        if text.is_empty() {
            return;
        }
        self.add(
            svg::node::element::Text::new(text)
                .set("x", x)
                .set("y", y + 8)
                .set("font-family", "monospace")
                .set("font-size", 11)
                .set("fill", css(colour)),
        );
    }

    fn diamond(&mut self, cx: i64, cy: i64, r: i64) {
        let (cx, cy, r) = (cx as f64 + 0.5, cy as f64 + 0.5, r as f64);
        self.add(
            svg::node::element::Polygon::new()
                .set("points", format!("{cx},{} {},{cy} {cx},{} {},{cy}", cy - r, cx + r, cy + r, cx - r))
                .set("fill", css(SPAWN))
                .set("stroke", css(INK)),
        );
    }

    fn clip(&mut self, area: Option<(i64, i64, i64, i64)>) {
        if let Some(group) = self.clipped.take() {
            self.add(group);
        }
        if let Some((x, y, w, h)) = area {
            self.clips += 1;
            let id = format!("clip{}", self.clips);
            let rect = svg::node::element::Rectangle::new().set("x", x).set("y", y).set("width", w).set("height", h);
            self.add(svg::node::element::ClipPath::new().set("id", id.clone()).add(rect));
            self.clipped = Some(svg::node::element::Group::new().set("clip-path", format!("url(#{id})")));
        }
    }
}

/// The tiles, the map's top left at (origin, origin).
fn draw_tiles(canvas: &mut Canvas, tiles: &TileWorld, layout: &Layout, field: Option<&DistanceField>, origin: u32) {
    let longest = field.map(|f| {
        let mut longest = 0f32;
        for y in 0..tiles.depth() {
            for x in 0..tiles.width() {
                longest = longest.max(f.distance(TilePos { x, y }).unwrap_or(0.0));
            }
        }
        longest.max(1.0)
    });
    for py in 0..layout.map_depth {
        let y = ((f64::from(py) / layout.pixels_per_tile) as u32).min(tiles.depth() - 1);
        for px in 0..layout.map_width {
            let x = ((f64::from(px) / layout.pixels_per_tile) as u32).min(tiles.width() - 1);
            let colour = match tiles.get(i64::from(x), i64::from(y)) {
                Some(Tile::Rock) => ROCK,
                Some(Tile::Water) => WATER,
                _ => match (field, longest) {
                    (Some(f), Some(longest)) => match f.distance(TilePos { x, y }) {
                        Some(d) => ramp(f64::from(d / longest)),
                        None => GROUND_WALLED,
                    },
                    _ => GROUND,
                },
            };
            canvas.set(i64::from(origin + px), i64::from(origin + py), colour);
        }
    }
}

/// The distance ramp: yellow (near) through orange and red to dark purple (far).
fn ramp(t: f64) -> Rgb {
    const STOPS: [Rgb; 4] = [[255, 245, 120], [250, 150, 40], [200, 40, 60], [70, 20, 100]];
    let t = t.clamp(0.0, 1.0) * (STOPS.len() - 1) as f64;
    let i = (t.floor() as usize).min(STOPS.len() - 2);
    let f = t - i as f64;
    let mix = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * f).round() as u8;
    [mix(STOPS[i][0], STOPS[i + 1][0]), mix(STOPS[i][1], STOPS[i + 1][1]), mix(STOPS[i][2], STOPS[i + 1][2])]
}

fn draw_overlays(canvas: &mut impl Pen, preview: &Preview, layout: &Layout, entries: &[Entry]) {
    let ppt = layout.pixels_per_tile;
    // Regions first, then circles, then markers on top.
    let mut group = 0;
    for entry in entries {
        if let Some(Region { min_x, min_y, max_x, max_y }) = entry.spec.region {
            let (x0, y0) = layout.point(f64::from(min_x), f64::from(min_y));
            let (x1, y1) = layout.point(f64::from(max_x) + 1.0, f64::from(max_y) + 1.0);
            let (x0, y0, x1, y1) = (x0.floor() as i64, y0.floor() as i64, x1.ceil() as i64, y1.ceil() as i64);
            canvas.outline(x0, y0, x1 - x0, y1 - y0, 2, GROUPS[group % GROUPS.len()]);
            group += 1;
        }
    }
    for vault in &preview.hunt.vaults {
        let (cx, cy) = layout.point(f64::from(vault.at.x) + 0.5, f64::from(vault.at.y) + 0.5);
        canvas.ring(cx, cy, f64::from(vault.sparkle_radius) * ppt, 1.0, SPARKLE);
    }
    for clue in &preview.hunt.clues {
        if let (ClueKind::Area(area), Some((x, y))) = (&clue.kind, clue.centre) {
            let (cx, cy) = layout.point(f64::from(x), f64::from(y));
            canvas.ring(cx, cy, f64::from(area.radius) * ppt, 2.0, AREA);
            if let Some(to) = area.shrink_to {
                canvas.ring(cx, cy, f64::from(to) * ppt, 1.0, AREA);
            }
        }
        if let ClueTrigger::Enter(circle) = &clue.trigger {
            let (cx, cy) = layout.point(f64::from(circle.x), f64::from(circle.y));
            canvas.ring(cx, cy, f64::from(circle.radius) * ppt, 2.0, ENTER);
        }
    }
    let mut group = 0;
    let mut fixed = 0;
    for entry in entries {
        for vault in &entry.vaults {
            let (x, y) = layout.tile_pixel(vault.at);
            let (x, y) = (i64::from(x), i64::from(y));
            if entry.spec.count.is_some() {
                canvas.disc(x, y, MARKER + 2, INK);
                canvas.disc(x, y, MARKER, GROUPS[group % GROUPS.len()]);
            } else {
                fixed += 1;
                let half = MARKER / 2;
                canvas.fill(x - half - 1, y - half - 1, MARKER + 2, MARKER + 2, INK);
                canvas.fill(x - half, y - half, MARKER, MARKER, rule_colour(vault.claim));
                let label = fixed.to_string();
                let lx = x + half + 3;
                canvas.fill(lx - 1, y - 5, label.len() as i64 * 8 + 2, 10, BACKGROUND);
                canvas.text(lx, y - 4, &label, INK);
            }
        }
        if entry.spec.count.is_some() {
            group += 1;
        }
    }
    let (sx, sy) = layout.point(f64::from(preview.spawn.x), f64::from(preview.spawn.y));
    canvas.diamond(sx.floor() as i64, sy.floor() as i64, 7);
}

/// A bar under the map a round number of tiles long, about a fifth of the map.
fn draw_scale(canvas: &mut impl Pen, tiles: &TileWorld, layout: &Layout) {
    let target = f64::from(tiles.width()) / 5.0;
    let steps = [1u32, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000];
    let length = steps.iter().copied().filter(|s| f64::from(*s) <= target.max(1.0)).max().unwrap_or(1);
    let pixels = (f64::from(length) * layout.pixels_per_tile).round() as i64;
    let (x, y) = (i64::from(MARGIN), i64::from(MARGIN + layout.map_depth + 12));
    canvas.fill(x, y, pixels.max(1), 4, INK);
    canvas.fill(x, y - 4, 1, 12, INK);
    canvas.fill(x + pixels.max(1) - 1, y - 4, 1, 12, INK);
    canvas.text(x, y + 10, &format!("{length} tiles"), INK);
}

enum Swatch {
    None,
    Fill(Rgb),
    Square(Rgb),
    Disc(Rgb),
    Ring(Rgb),
    Ramp,
}

struct LegendLine {
    swatch: Swatch,
    text: String,
}

fn legend_lines(preview: &Preview, entries: &[Entry]) -> Vec<LegendLine> {
    let mut lines = Vec::new();
    let mut line = |swatch: Swatch, text: String| lines.push(LegendLine { swatch, text });
    let hunt = preview.hunt;
    line(Swatch::None, format!("Hunt {}", hunt.id));
    line(Swatch::None, format!("World {} x {} tiles", preview.tiles.width(), preview.tiles.depth()));
    line(Swatch::None, String::new());
    line(Swatch::Fill(GROUND), "ground".into());
    line(Swatch::Fill(ROCK), "rock".into());
    line(Swatch::Fill(WATER), "water".into());
    line(Swatch::Fill(SPAWN), format!("spawn ({}, {})", preview.spawn.x, preview.spawn.y));
    line(Swatch::Ring(SPARKLE), "sparkle radius".into());
    line(Swatch::Ring(AREA), "Area clue: Radius, ShrinkTo".into());
    line(Swatch::Ring(ENTER), "Enter circle of a clue".into());
    for rule in [ClaimRule::FirstFinder, ClaimRule::PerPlayer, ClaimRule::FirstFinderThenPerPlayer, ClaimRule::Team] {
        line(Swatch::Square(rule_colour(rule)), format!("fixed vault, {rule:?}"));
    }
    if let Some(vault) = preview.distance {
        line(Swatch::None, String::new());
        line(Swatch::None, format!("Walking distance to {}", vault.id));
        line(Swatch::Ramp, "near to far".into());
        line(Swatch::Fill(GROUND_WALLED), "ground walled off".into());
    }
    line(Swatch::None, String::new());
    line(Swatch::None, "Fixed vaults:".into());
    let mut fixed = 0;
    for entry in entries.iter().filter(|e| e.spec.count.is_none()) {
        for vault in &entry.vaults {
            fixed += 1;
            line(
                Swatch::Square(rule_colour(vault.claim)),
                format!("{fixed} {} ({}, {}) {:?}", vault.id, vault.at.x, vault.at.y, vault.claim),
            );
        }
    }
    line(Swatch::None, String::new());
    line(Swatch::None, "Random groups (region, vaults):".into());
    for (n, entry) in entries.iter().filter(|e| e.spec.count.is_some()).enumerate() {
        line(
            Swatch::Disc(GROUPS[n % GROUPS.len()]),
            format!("{} x{} {:?}", entry.spec.id, entry.vaults.len(), entry.spec.claim),
        );
    }
    lines
}

#[cfg(test)]
mod tests {
    use treasure_hunt_ecs::model::assets::Hunt;
    use veltrix_sdk::serde_json;

    use super::*;

    fn vault(id: &str, x: u32, y: u32) -> PlacedVault {
        PlacedVault {
            id: id.into(),
            at: TilePos { x, y },
            loot_table: "T".into(),
            consolation_table: None,
            dig_effort: 1,
            claim: ClaimRule::FirstFinder,
            sparkle_radius: 0.0,
        }
    }

    /// On a 2048 x 2048 world the map is sampled down to half a pixel a tile, and a vault's
    /// marker keeps its 9 x 9 pixels (with a 1-pixel edge), centred on its tile's pixel.
    #[test]
    fn markers_keep_their_size_on_a_large_world() {
        let tiles = TileWorld::flat(2048, 2048);
        let def: Hunt = serde_json::from_str(
            r#"{"Seed": 1, "Vaults": [{"Id": "Far", "At": {"X": 1501, "Y": 77}, "LootTable": "T"}]}"#,
        )
        .unwrap();
        let hunt = PlacedHunt { id: "Big".into(), def, vaults: vec![vault("Far", 1501, 77)], clues: vec![] };
        let canvas =
            draw(&Preview { hunt: &hunt, tiles: &tiles, spawn: Spawn { x: 1024.0, y: 1024.0 }, distance: None });
        let layout = Layout::of(&tiles);
        assert_eq!((layout.pixels_per_tile, layout.map_width, layout.map_depth), (0.5, 1024, 1024));
        let (x, y) = layout.tile_pixel(TilePos { x: 1501, y: 77 });
        assert_eq!((x, y), (16 + 750, 16 + 38));
        let red = rule_colour(ClaimRule::FirstFinder);
        let inside: Vec<(u32, u32)> = (y - 6..=y + 6)
            .flat_map(|py| (x - 6..=x + 6).map(move |px| (px, py)))
            .filter(|(px, py)| canvas.pixel(*px, *py) == red)
            .collect();
        assert_eq!(inside.len(), 81, "a 9 x 9 marker");
        assert!(inside.iter().all(|(px, py)| px.abs_diff(x) <= 4 && py.abs_diff(y) <= 4));
        assert_eq!(canvas.pixel(x - 5, y), INK, "its edge");
        assert_eq!(canvas.pixel(x - 7, y), GROUND, "the ground around it");
    }

    #[test]
    fn the_ramp_runs_from_near_to_far() {
        assert_eq!(ramp(0.0), [255, 245, 120]);
        assert_eq!(ramp(1.0), [70, 20, 100]);
        assert_eq!(ramp(2.0), ramp(1.0));
    }
}
