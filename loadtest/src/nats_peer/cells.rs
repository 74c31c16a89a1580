//! Who listens to what: the world cut into square cells, a cell's subject, the 3x3 cells a bot
//! subscribes to, and the seeded positions and event draws. Pure: no NATS.

use std::collections::HashMap;

/// The cell holding (x, y), as our server's grid computes it.
pub fn cell_of((x, y): (f32, f32), cell_size: f32) -> (i32, i32) {
    ((x / cell_size).floor() as i32, (y / cell_size).floor() as i32)
}

/// The subject of a cell.
pub fn subject_of((cx, cy): (i32, i32)) -> String {
    format!("cell.{cx}.{cy}")
}

/// The 9 cells a bot in `cell` subscribes to: the 3x3 around it, row by row.
pub fn area_of((cx, cy): (i32, i32)) -> [(i32, i32); 9] {
    let mut out = [(0, 0); 9];
    let mut i = 0;
    for dy in -1..=1 {
        for dx in -1..=1 {
            out[i] = (cx + dx, cy + dy);
            i += 1;
        }
    }
    out
}

/// Who listens to what: each bot's cell and, per cell, the bots subscribed to its subject.
#[derive(Debug, Clone)]
pub struct SubscriptionMap {
    cells: Vec<(i32, i32)>,
    subscribers: HashMap<(i32, i32), u64>,
}

impl SubscriptionMap {
    pub fn new(positions: &[(f32, f32)], cell_size: f32) -> Self {
        let cells: Vec<(i32, i32)> = positions.iter().map(|&p| cell_of(p, cell_size)).collect();
        let mut subscribers = HashMap::new();
        for &cell in &cells {
            for near in area_of(cell) {
                *subscribers.entry(near).or_insert(0) += 1;
            }
        }
        Self { cells, subscribers }
    }

    /// The cell of bot `bot`.
    pub fn cell(&self, bot: usize) -> (i32, i32) {
        self.cells[bot]
    }

    /// Bots subscribed to the subject of `cell`.
    pub fn subscribers(&self, cell: (i32, i32)) -> u64 {
        self.subscribers.get(&cell).copied().unwrap_or(0)
    }

    /// Deliveries an event at bot `bot`'s position should make.
    pub fn expected_for(&self, bot: usize) -> u64 {
        self.subscribers(self.cells[bot])
    }

    /// Deliveries a series of events (each given by the bot at whose position it happens) should make.
    pub fn expected(&self, events: impl IntoIterator<Item = usize>) -> u64 {
        events.into_iter().map(|bot| self.expected_for(bot)).sum()
    }
}

/// SplitMix64: small, seeded, the same sequence everywhere.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// `bots` positions uniform over a `width` x `depth` world, seeded.
pub fn uniform_positions(bots: usize, width: f32, depth: f32, seed: u64) -> Vec<(f32, f32)> {
    let mut rng = Rng::new(seed);
    (0..bots)
        .map(|_| ((rng.next_f64() * f64::from(width)) as f32, (rng.next_f64() * f64::from(depth)) as f32))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_and_subjects() {
        assert_eq!(cell_of((0.0, 0.0), 40.0), (0, 0));
        assert_eq!(cell_of((39.9, 40.0), 40.0), (0, 1));
        assert_eq!(cell_of((-0.5, 81.0), 40.0), (-1, 2));
        assert_eq!(subject_of((3, -1)), "cell.3.-1");
        let area = area_of((5, 7));
        assert_eq!(area[0], (4, 6));
        assert_eq!(area[4], (5, 7));
        assert_eq!(area[8], (6, 8));
        let mut sorted = area.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 9);
    }

    #[test]
    fn expected_deliveries_on_a_small_layout() {
        // Cells 10 tiles wide. Bots: a and b in cell (0, 0), c in (1, 1), d in (2, 0), e far
        // away in (9, 9).
        let positions = [(1.0, 1.0), (9.0, 5.0), (15.0, 15.0), (25.0, 3.0), (95.0, 95.0)];
        let map = SubscriptionMap::new(&positions, 10.0);
        assert_eq!(map.cell(0), (0, 0));
        assert_eq!(map.cell(3), (2, 0));
        // Subscribed to cell (0, 0): a, b, c (its 3x3 reaches (0, 0)); d's reaches only x 1..=3.
        assert_eq!(map.subscribers((0, 0)), 3);
        // (1, 1): a, b, c, d.
        assert_eq!(map.subscribers((1, 1)), 4);
        // (2, 0): c, d.
        assert_eq!(map.subscribers((2, 0)), 2);
        assert_eq!(map.subscribers((9, 9)), 1);
        assert_eq!(map.subscribers((5, 5)), 0);
        // An event at a: 3; at c: 4; at d: 2; at e: 1 (itself).
        assert_eq!(map.expected([0, 2, 3, 4]), 3 + 4 + 2 + 1);
        assert_eq!(map.expected([1, 1]), 6);
    }

    #[test]
    fn seeded_positions_are_uniform_and_repeatable() {
        let a = uniform_positions(1000, 2048.0, 1024.0, 7);
        assert_eq!(a, uniform_positions(1000, 2048.0, 1024.0, 7));
        assert!(a.iter().all(|&(x, y)| (0.0..2048.0).contains(&x) && (0.0..1024.0).contains(&y)));
        let mut rng = Rng::new(1);
        assert!((0..1000).all(|_| rng.below(3) < 3));
    }
}
