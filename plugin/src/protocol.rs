//! The mod's messages on the wire, in its namespace `Veltrix:TreasureHunt` (docs/protocol.md).
//! The types live in the crate `treasure-hunt-wire` (`wire/`), which clients and the bot swarm
//! use without linking the mod; they are named here too (`treasure_hunt::protocol::Dig`), and
//! this module registers them with the sdk.

pub use treasure_hunt_wire::*;

/// The wire as one unit: the messages clients may send and those the mod sends, by kind.
pub fn plugin(ctx: &mut veltrix_sdk::ModContext) {
    ctx.add_client_message::<Dig>("Dig")
        .add_client_message::<Discard>("Discard")
        .add_client_message::<JoinTeam>("JoinTeam")
        .add_client_message::<CatchUp>("CatchUp")
        .add_client_message::<AskClue>("AskClue")
        .add_client_message::<Rank>("Rank")
        .add_client_message::<UseItem>("UseItem")
        .add_server_message::<DigProgress>("DigProgress")
        .add_server_message::<VaultDiscovered>("VaultDiscovered")
        .add_server_message::<LootGranted>("LootGranted")
        .add_server_message::<InventoryChanged>("InventoryChanged")
        .add_server_message::<Discarded>("Discarded")
        .add_server_message::<TeamChanged>("TeamChanged")
        .add_server_message::<VaultClaimed>("VaultClaimed")
        .add_server_message::<CaughtUp>("CaughtUp")
        .add_server_message::<Snapshot>("Snapshot")
        .add_server_message::<Clue>("Clue")
        .add_server_message::<HuntAnnounced>("HuntAnnounced")
        .add_server_message::<Leaderboard>("Leaderboard")
        .add_server_message::<YourRank>("YourRank")
        .add_server_message::<Hint>("Hint")
        .add_server_message::<EffectStarted>("EffectStarted")
        .add_server_message::<EffectEnded>("EffectEnded")
        .add_server_message::<TreasureSense>("TreasureSense");
}
