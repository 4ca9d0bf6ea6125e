//! `stream`: play an audio file to the caller.

use serde::Serialize;

use super::url_array;
use crate::error::NccoError;
use crate::validate::{Obj, Spec, Validator};

/// The `stream` action. Synchronous: the next action starts when the file has played
/// `loop_count` times, or at once when the caller barges in with a key (`barge_in`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stream {
    /// The mp3 or wav file (sent as an array with one URL).
    #[serde(serialize_with = "url_array::one")]
    pub stream_url: String,
    /// Volume, -1..=1; default 0.
    pub level: f64,
    /// A DTMF key stops playback; an `input` must follow.
    pub barge_in: bool,
    /// Times to play; 0 = until something else ends it. Default 1.
    #[serde(rename = "loop")]
    pub loop_count: u32,
}

const SPEC: Spec = Spec {
    fields: &["action", "streamUrl", "level", "bargeIn", "loop"],
    unsupported: &[],
};

pub(super) fn parse(v: &mut Validator<'_>, obj: &Obj<'_>) -> Result<Stream, NccoError> {
    obj.check_keys(v, &SPEC)?;
    let stream_url = obj.require(v, "streamUrl")?.url_array()?;
    let mut s = Stream {
        stream_url,
        level: 0.0,
        barge_in: false,
        loop_count: 1,
    };
    if let Some(f) = obj.get(v, "level") {
        s.level = f.number(-1.0, 1.0)?;
    }
    if let Some(f) = obj.get(v, "bargeIn") {
        s.barge_in = f.boolean()?;
    }
    if let Some(f) = obj.get(v, "loop") {
        s.loop_count = super::talk::loop_count(&f)?;
    }
    Ok(s)
}
