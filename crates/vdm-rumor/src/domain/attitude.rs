//! How an NPC is disposed to talk to a player, from the player's standing
//! with the NPC's faction: a hostile NPC tells nothing, a friendly one
//! tells more than one rumor at a time.

/// Below this standing with its faction, an NPC is hostile: it tells the
/// player nothing.
pub const HOSTILE_BELOW: i32 = -20;
/// From this standing with its faction on, an NPC is friendly: it tells up
/// to [`FRIENDLY_SHARES`] rumors the player has not heard in one talk.
pub const FRIENDLY_FROM: i32 = 20;
/// Most rumors a friendly NPC tells in one talk.
pub const FRIENDLY_SHARES: usize = 2;

/// How an NPC is disposed to talk to a player.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attitude {
    /// The player's standing with its faction is below [`HOSTILE_BELOW`].
    Hostile,
    /// Neither hostile nor friendly, or the NPC has no faction.
    Neutral,
    /// The player's standing with its faction is [`FRIENDLY_FROM`] or more.
    Friendly,
}

impl Attitude {
    /// The attitude of an NPC of `faction` toward a player with these
    /// `standings` (`(faction id, standing)`; a faction not listed is 0).
    pub fn of(faction: Option<i64>, standings: &[(i64, i32)]) -> (Attitude, i32) {
        let Some(faction) = faction else {
            return (Attitude::Neutral, 0);
        };
        let standing = standings
            .iter()
            .find(|(id, _)| *id == faction)
            .map_or(0, |(_, standing)| *standing);
        let attitude = if standing < HOSTILE_BELOW {
            Attitude::Hostile
        } else if standing >= FRIENDLY_FROM {
            Attitude::Friendly
        } else {
            Attitude::Neutral
        };
        (attitude, standing)
    }

    /// How many rumors the player has not heard the NPC tells in one talk.
    pub fn shares(self) -> usize {
        match self {
            Attitude::Hostile => 0,
            Attitude::Neutral => 1,
            Attitude::Friendly => FRIENDLY_SHARES,
        }
    }

    /// Its name, as metrics and logs show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Attitude::Hostile => "hostile",
            Attitude::Neutral => "neutral",
            Attitude::Friendly => "friendly",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standing_with_the_npcs_faction_decides() {
        let standings = [(5, -21), (6, 20), (7, -20)];
        assert_eq!(Attitude::of(Some(5), &standings), (Attitude::Hostile, -21));
        assert_eq!(Attitude::of(Some(6), &standings), (Attitude::Friendly, 20));
        assert_eq!(Attitude::of(Some(7), &standings), (Attitude::Neutral, -20));
        assert_eq!(
            Attitude::of(Some(8), &standings),
            (Attitude::Neutral, 0),
            "not listed: 0"
        );
        assert_eq!(Attitude::of(None, &standings), (Attitude::Neutral, 0), "no faction");
        assert_eq!(
            [Attitude::Hostile, Attitude::Neutral, Attitude::Friendly].map(Attitude::shares),
            [0, 1, FRIENDLY_SHARES]
        );
    }
}
