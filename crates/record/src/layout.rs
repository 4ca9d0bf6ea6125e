//! Channel layouts and the routing of each leg's audio to a channel.

use serde::{Deserialize, Serialize};

/// Sample rate of every recording timeline and of every file callmux writes (Hz).
pub const SAMPLE_RATE: u32 = 16_000;

/// Most channels a recording may have (`channels: 32` in the NCCO).
pub const MAX_CHANNELS: u8 = 32;

/// How legs map to channels; chosen by the NCCO `record` action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelLayout {
    /// One channel: every leg's voice and what was played to the first leg, mixed.
    Mono,
    /// `split: "conversation"`: channel 1 = what the caller (first leg) sent, channel 2 =
    /// what the caller heard (every other leg plus audio played to the caller).
    Split,
    /// `channels: N` (1..=32): the k-th leg to join (0-based) goes to channel `min(k, N-1)`;
    /// played audio is not recorded so that each channel is exactly one participant's voice.
    Multi(u8),
}

impl ChannelLayout {
    /// Number of channels of the file. `Multi(0)` counts as 1 and `Multi(n > 32)` as 32;
    /// [`ChannelLayout::validate`] rejects both.
    pub fn channels(self) -> u16 {
        match self {
            Self::Mono => 1,
            Self::Split => 2,
            Self::Multi(n) => u16::from(n.clamp(1, MAX_CHANNELS)),
        }
    }

    /// Checks the layout is one a recording can have (`Multi` needs 1..=32).
    pub fn validate(self) -> Result<(), String> {
        match self {
            Self::Multi(n) if !(1..=MAX_CHANNELS).contains(&n) => {
                Err(format!("channels must be 1..={MAX_CHANNELS}, got {n}"))
            }
            _ => Ok(()),
        }
    }

    /// Name used in the sidecar (`mono`, `split`, `multi`).
    pub fn name(self) -> LayoutName {
        match self {
            Self::Mono => LayoutName::Mono,
            Self::Split => LayoutName::Split,
            Self::Multi(_) => LayoutName::Multi,
        }
    }

    /// Where the `index`-th leg to join (0-based) is recorded.
    pub fn route(self, index: usize) -> Route {
        match self {
            Self::Mono => Route {
                received: 0,
                played: (index == 0).then_some(0),
            },
            Self::Split => {
                if index == 0 {
                    Route {
                        received: 0,
                        played: Some(1),
                    }
                } else {
                    Route {
                        received: 1,
                        played: None,
                    }
                }
            }
            Self::Multi(_) => {
                let last = usize::from(self.channels() - 1);
                // `last` ≤ 31, so the cast cannot truncate.
                Route {
                    received: index.min(last) as u16,
                    played: None,
                }
            }
        }
    }
}

/// The layout's name as written in the sidecar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayoutName {
    /// [`ChannelLayout::Mono`].
    Mono,
    /// [`ChannelLayout::Split`].
    Split,
    /// [`ChannelLayout::Multi`].
    Multi,
}

/// Channels (0-based) that one leg's audio goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Channel of what the leg sent.
    pub received: u16,
    /// Channel of what callmux played to the leg, if that is recorded at all.
    pub played: Option<u16>,
}

/// A leg of the recording, named by the server; unique within one recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LegKey(pub u32);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_three_with_four_legs_shares_the_last_channel() {
        let l = ChannelLayout::Multi(3);
        let chans: Vec<u16> = (0..4).map(|i| l.route(i).received).collect();
        assert_eq!(chans, [0, 1, 2, 2]);
        assert!((0..4).all(|i| l.route(i).played.is_none()));
    }

    #[test]
    fn split_and_mono_routing() {
        assert_eq!(
            ChannelLayout::Split.route(0),
            Route {
                received: 0,
                played: Some(1)
            }
        );
        assert_eq!(
            ChannelLayout::Split.route(3),
            Route {
                received: 1,
                played: None
            }
        );
        assert_eq!(
            ChannelLayout::Mono.route(0),
            Route {
                received: 0,
                played: Some(0)
            }
        );
        assert_eq!(
            ChannelLayout::Mono.route(1),
            Route {
                received: 0,
                played: None
            }
        );
    }

    #[test]
    fn validation_and_channel_counts() {
        assert!(ChannelLayout::Multi(0).validate().is_err());
        assert!(ChannelLayout::Multi(33).validate().is_err());
        assert!(ChannelLayout::Multi(32).validate().is_ok());
        assert_eq!(ChannelLayout::Multi(200).channels(), 32);
        assert_eq!(ChannelLayout::Split.channels(), 2);
    }
}
