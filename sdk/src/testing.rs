//! Testing mods headless: the host schedules, scripted players and a transcript.
