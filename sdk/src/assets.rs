//! Asset packs: JSON game data in the Hytale layout, loaded with precise errors.
