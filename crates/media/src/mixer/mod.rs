//! Conference mixer for the `conversation` action: mix-minus on 20 ms ticks at 16 kHz mono.
//!
//! Every participant is both a speaker (what its leg sends, decoded to 16 kHz `i16`) and a
//! listener (what is encoded and sent back to its leg). A listener hears the sum of every
//! other participant that may speak to it and that it may hear, never itself:
//! `canSpeak` (here [`ParticipantOptions::can_speak_to`]) lists the participants a speaker's
//! audio goes to, `canHear` ([`ParticipantOptions::can_hear`]) the participants a listener
//! hears, `None` meaning everyone, and a muted participant sends nothing.
//!
//! # Run loop (one conference, driven by one task)
//!
//! ```text
//! mixer.add(id, opts)?;                       // a leg joins (allocates its buffers)
//! mixer.push(id, &decoded);                   // whenever a leg's audio is decoded, any length
//! every 20 ms:
//!     mixer.tick();                           // consume one frame per speaker, mix
//!     for id in mixer.participants() {
//!         encode(mixer.frame_for(id));        // what that leg hears
//!         record(id, mixer.spoken(id));       // what that leg said, for its own channel
//!     }
//! mixer.remove(id);                           // a leg leaves
//! ```
//!
//! The mixer has no clock: a tick *is* 20 ms, and the caller decides when it happens.
//!
//! # Jitter and drift
//!
//! Each speaker has a FIFO of samples bounded by [`MixerConfig::max_depth_frames`]. A speaker
//! is silent until its FIFO first holds [`MixerConfig::target_depth_frames`] (prefill, so
//! 60 ms of arrival jitter is absorbed by default); if it then runs dry the short frame is
//! padded with silence, an underrun is counted and the speaker prefills again. A speaker
//! whose clock runs fast (or that delivers a burst) fills its FIFO past the bound: the oldest
//! samples are dropped in whole frames and counted, so the added latency stays bounded.
//!
//! # Cost
//!
//! A tick is O(N) frames for N participants, not O(N²): the frames of everyone who speaks to
//! everyone are summed once in `i32`, and each listener that hears everyone gets that sum
//! minus its own contribution, clamped to `i16` only after the subtraction (so saturation in
//! the full sum never leaks into a listener's frame). Speakers with a `can_speak_to` list are
//! added per listener they reach, and listeners with a `can_hear` list get their own sum of
//! exactly the speakers they hear; the routes are worked out when membership or options
//! change, not per tick. Nothing allocates per tick or per push: [`ConferenceMixer::add`],
//! [`ConferenceMixer::remove`] and [`ConferenceMixer::set_options`] are the only calls that
//! may.

mod fifo;

use std::collections::HashMap;

use fifo::SampleFifo;

/// Sample rate of everything the mixer takes and gives, in Hz.
pub const SAMPLE_RATE: u32 = 16_000;
/// Length of one tick in milliseconds.
pub const FRAME_MS: u32 = 20;
/// Samples in one frame (one tick): 20 ms at 16 kHz.
pub const FRAME_SAMPLES: usize = 320;
/// Hard limit on [`MixerConfig::max_participants`]: the `i32` accumulator cannot overflow
/// below it (65 535 × 32 768 < 2³¹).
pub const MAX_PARTICIPANTS: usize = 65_535;

/// Identifies a participant (the caller maps leg uuids to these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParticipantId(pub u32);

/// Who a participant speaks to and hears, and whether it is muted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParticipantOptions {
    /// The participants this one's audio goes to (NCCO `canSpeak`); `None` = everyone.
    /// Participants named here that are not (yet) in the conference are ignored until they
    /// join.
    pub can_speak_to: Option<Vec<ParticipantId>>,
    /// The participants this one hears (NCCO `canHear`); `None` = everyone.
    pub can_hear: Option<Vec<ParticipantId>>,
    /// Sends nothing (NCCO `mute`). Its audio is still consumed at the normal rate, so it
    /// resumes without a backlog when unmuted.
    pub muted: bool,
}

/// Jitter and size limits of a [`ConferenceMixer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MixerConfig {
    /// Frames a speaker's FIFO must hold before its audio is played, after joining and after
    /// every underrun (default 3 = 60 ms of jitter absorbed). At least 1 is used.
    pub target_depth_frames: usize,
    /// Frames a speaker's FIFO may hold; beyond this the oldest are dropped (default 8 =
    /// 160 ms, the most latency the mixer adds). At least `target_depth_frames` is used.
    pub max_depth_frames: usize,
    /// Most participants [`ConferenceMixer::add`] accepts (default 256, at most
    /// [`MAX_PARTICIPANTS`]).
    pub max_participants: usize,
}

impl Default for MixerConfig {
    fn default() -> Self {
        Self {
            target_depth_frames: 3,
            max_depth_frames: 8,
            max_participants: 256,
        }
    }
}

/// Why [`ConferenceMixer::add`] refused a participant (caller misuse).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MixerError {
    /// A participant with this id is already in the conference.
    #[error("participant {} is already in the conference", .0 .0)]
    AlreadyPresent(ParticipantId),
    /// The conference has [`MixerConfig::max_participants`] participants.
    #[error("the conference is full ({max} participants)")]
    Full {
        /// The limit.
        max: usize,
    },
}

/// Counters for one participant as a speaker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParticipantStats {
    /// [`ConferenceMixer::push`] calls that brought at least one sample.
    pub frames_in: u64,
    /// Samples pushed.
    pub samples_in: u64,
    /// Ticks on which its audio was taken from its FIFO (including short frames).
    pub frames_played: u64,
    /// Ticks on which it contributed silence because its FIFO was prefilling.
    pub silent_frames: u64,
    /// Times its FIFO ran dry while playing (each followed by a new prefill).
    pub underruns: u64,
    /// Times its FIFO overflowed and old samples were dropped.
    pub overflows: u64,
    /// Samples dropped by those overflows.
    pub dropped_samples: u64,
    /// Samples in its FIFO now.
    pub buffered_samples: usize,
}

/// Precomputed sources of one listener.
#[derive(Debug, Clone, Default)]
struct Route {
    /// Starts from the shared sum of unrestricted speakers (minus itself); otherwise from 0.
    hears_everyone: bool,
    /// Indices of the speakers added on top: with `hears_everyone`, the restricted speakers
    /// that reach this listener; without it, every speaker it hears.
    sources: Vec<usize>,
}

#[derive(Debug, Clone)]
struct Participant {
    id: ParticipantId,
    opts: ParticipantOptions,
    fifo: SampleFifo,
    /// Past prefill: its FIFO is being consumed.
    playing: bool,
    stats: ParticipantStats,
    /// Contributed audio on the last tick (unmuted and playing).
    active: bool,
    /// Part of the last tick's shared sum (active and speaks to everyone).
    in_sum: bool,
    route: Route,
}

impl Participant {
    /// Fills `out` with this tick's frame from the FIFO (or silence while prefilling);
    /// returns whether any audio came from the FIFO.
    fn take_frame(&mut self, out: &mut [i16], prefill: usize) -> bool {
        if !self.playing {
            if self.fifo.len() < prefill {
                out.fill(0);
                self.stats.silent_frames += 1;
                return false;
            }
            self.playing = true;
        }
        let got = self.fifo.pop_into(out);
        if got < out.len() {
            out[got..].fill(0);
            self.stats.underruns += 1;
            self.playing = false;
        }
        if got == 0 {
            self.stats.silent_frames += 1;
            return false;
        }
        self.stats.frames_played += 1;
        true
    }
}

/// Mix-minus mixer for one named conference. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct ConferenceMixer {
    config: MixerConfig,
    /// In joining order.
    participants: Vec<Participant>,
    index: HashMap<ParticipantId, usize>,
    /// Last tick's frame from each speaker, [`FRAME_SAMPLES`] per participant, same order.
    spoken: Vec<i16>,
    /// Last tick's frame for each listener, same layout.
    mixes: Vec<i16>,
    /// Sum of the unrestricted speakers.
    sum: Box<[i32; FRAME_SAMPLES]>,
    /// Per-listener accumulator for restricted routes.
    scratch: Box<[i32; FRAME_SAMPLES]>,
}

impl Default for ConferenceMixer {
    fn default() -> Self {
        Self::new(MixerConfig::default())
    }
}

fn clamp16(x: i32) -> i16 {
    x.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
}

fn frame(buf: &[i16], i: usize) -> &[i16] {
    &buf[i * FRAME_SAMPLES..(i + 1) * FRAME_SAMPLES]
}

impl ConferenceMixer {
    /// An empty conference. Out-of-range limits are brought into range (see
    /// [`MixerConfig`]); [`config`](Self::config) tells what is used.
    pub fn new(config: MixerConfig) -> Self {
        let target = config.target_depth_frames.max(1);
        let config = MixerConfig {
            target_depth_frames: target,
            max_depth_frames: config.max_depth_frames.max(target),
            max_participants: config.max_participants.min(MAX_PARTICIPANTS),
        };
        Self {
            config,
            participants: Vec::new(),
            index: HashMap::new(),
            spoken: Vec::new(),
            mixes: Vec::new(),
            sum: Box::new([0; FRAME_SAMPLES]),
            scratch: Box::new([0; FRAME_SAMPLES]),
        }
    }

    /// The limits in use.
    pub fn config(&self) -> MixerConfig {
        self.config
    }

    /// Adds a participant, silent until its first frames have prefilled. Until the next tick
    /// its [`frame_for`](Self::frame_for) and [`spoken`](Self::spoken) are silence.
    pub fn add(&mut self, id: ParticipantId, opts: ParticipantOptions) -> Result<(), MixerError> {
        if self.index.contains_key(&id) {
            return Err(MixerError::AlreadyPresent(id));
        }
        if self.participants.len() >= self.config.max_participants {
            return Err(MixerError::Full {
                max: self.config.max_participants,
            });
        }
        self.index.insert(id, self.participants.len());
        self.participants.push(Participant {
            id,
            opts,
            fifo: SampleFifo::new(self.config.max_depth_frames * FRAME_SAMPLES),
            playing: false,
            stats: ParticipantStats::default(),
            active: false,
            in_sum: false,
            route: Route::default(),
        });
        self.spoken.resize(self.spoken.len() + FRAME_SAMPLES, 0);
        self.mixes.resize(self.mixes.len() + FRAME_SAMPLES, 0);
        self.rebuild_routes();
        Ok(())
    }

    /// Removes a participant and returns its final counters (`None` if it was not there).
    /// The others keep their order.
    pub fn remove(&mut self, id: ParticipantId) -> Option<ParticipantStats> {
        let i = self.index.remove(&id)?;
        let gone = self.participants.remove(i);
        let range = i * FRAME_SAMPLES..(i + 1) * FRAME_SAMPLES;
        self.spoken.drain(range.clone());
        self.mixes.drain(range);
        for (j, p) in self.participants.iter().enumerate().skip(i) {
            self.index.insert(p.id, j);
        }
        self.rebuild_routes();
        Some(Self::stats_of(&gone))
    }

    /// Mutes or unmutes a participant; returns `false` if it is not there. Does not
    /// allocate; takes effect at the next tick.
    pub fn set_muted(&mut self, id: ParticipantId, muted: bool) -> bool {
        match self.index.get(&id) {
            Some(&i) => {
                self.participants[i].opts.muted = muted;
                true
            }
            None => false,
        }
    }

    /// Replaces a participant's options; returns `false` if it is not there. Takes effect
    /// at the next tick.
    pub fn set_options(&mut self, id: ParticipantId, opts: ParticipantOptions) -> bool {
        let Some(&i) = self.index.get(&id) else {
            return false;
        };
        self.participants[i].opts = opts;
        self.rebuild_routes();
        true
    }

    /// A participant's options.
    pub fn options(&self, id: ParticipantId) -> Option<&ParticipantOptions> {
        self.index.get(&id).map(|&i| &self.participants[i].opts)
    }

    /// Queues what a participant said: 16 kHz mono samples of any length (normally one
    /// 20 ms frame of [`FRAME_SAMPLES`]). Returns `false` (and drops them) if it is not in
    /// the conference. Never allocates.
    pub fn push(&mut self, id: ParticipantId, samples: &[i16]) -> bool {
        let Some(&i) = self.index.get(&id) else {
            return false;
        };
        if samples.is_empty() {
            return true;
        }
        let p = &mut self.participants[i];
        p.stats.frames_in += 1;
        p.stats.samples_in += samples.len() as u64;
        let dropped = p.fifo.push(samples);
        if dropped > 0 {
            p.stats.overflows += 1;
            p.stats.dropped_samples += dropped as u64;
        }
        true
    }

    /// One 20 ms step: takes one frame from every speaker (silence while it prefills or
    /// after it runs dry), then computes every listener's mix-minus frame. Returns how many
    /// participants contributed audio (unmuted, with samples in their FIFO).
    pub fn tick(&mut self) -> usize {
        let prefill = self.config.target_depth_frames * FRAME_SAMPLES;
        let sum = &mut *self.sum;
        sum.fill(0);
        let mut active = 0;
        for (p, out) in self
            .participants
            .iter_mut()
            .zip(self.spoken.chunks_exact_mut(FRAME_SAMPLES))
        {
            let played = p.take_frame(out, prefill);
            if p.opts.muted {
                out.fill(0);
            }
            p.active = played && !p.opts.muted;
            p.in_sum = p.active && p.opts.can_speak_to.is_none();
            if p.in_sum {
                for (s, &x) in sum.iter_mut().zip(out.iter()) {
                    *s += i32::from(x);
                }
            }
            active += usize::from(p.active);
        }

        let sum = &*self.sum;
        let acc = &mut *self.scratch;
        for ((p, own), mix) in self
            .participants
            .iter()
            .zip(self.spoken.chunks_exact(FRAME_SAMPLES))
            .zip(self.mixes.chunks_exact_mut(FRAME_SAMPLES))
        {
            let route = &p.route;
            let extra = route.sources.iter().any(|&s| self.participants[s].active);
            if route.hears_everyone && !extra {
                // The common case: everyone but me.
                if p.in_sum {
                    for ((m, &s), &o) in mix.iter_mut().zip(sum.iter()).zip(own) {
                        *m = clamp16(s - i32::from(o));
                    }
                } else {
                    for (m, &s) in mix.iter_mut().zip(sum.iter()) {
                        *m = clamp16(s);
                    }
                }
                continue;
            }
            if route.hears_everyone {
                acc.copy_from_slice(sum);
                if p.in_sum {
                    for (a, &o) in acc.iter_mut().zip(own) {
                        *a -= i32::from(o);
                    }
                }
            } else {
                acc.fill(0);
            }
            for &s in &route.sources {
                if self.participants[s].active {
                    for (a, &x) in acc.iter_mut().zip(frame(&self.spoken, s)) {
                        *a += i32::from(x);
                    }
                }
            }
            for (m, &a) in mix.iter_mut().zip(acc.iter()) {
                *m = clamp16(a);
            }
        }
        active
    }

    /// What this listener hears, from the last tick: [`FRAME_SAMPLES`] samples.
    pub fn frame_for(&self, id: ParticipantId) -> Option<&[i16]> {
        self.index.get(&id).map(|&i| frame(&self.mixes, i))
    }

    /// What this speaker contributed on the last tick: [`FRAME_SAMPLES`] samples taken from
    /// its FIFO (silence while prefilling, and while muted), so a recording can put each
    /// participant in its own channel.
    pub fn spoken(&self, id: ParticipantId) -> Option<&[i16]> {
        self.index.get(&id).map(|&i| frame(&self.spoken, i))
    }

    /// The participants, in joining order.
    pub fn participants(&self) -> impl Iterator<Item = ParticipantId> + '_ {
        self.participants.iter().map(|p| p.id)
    }

    /// Whether this participant is in the conference.
    pub fn contains(&self, id: ParticipantId) -> bool {
        self.index.contains_key(&id)
    }

    /// Number of participants.
    pub fn len(&self) -> usize {
        self.participants.len()
    }

    /// No participants.
    pub fn is_empty(&self) -> bool {
        self.participants.is_empty()
    }

    /// A participant's counters.
    pub fn stats(&self, id: ParticipantId) -> Option<ParticipantStats> {
        self.index
            .get(&id)
            .map(|&i| Self::stats_of(&self.participants[i]))
    }

    fn stats_of(p: &Participant) -> ParticipantStats {
        ParticipantStats {
            buffered_samples: p.fifo.len(),
            ..p.stats
        }
    }

    /// Works out every listener's sources from the options (after add, remove and
    /// set_options; indices shift on remove). Reuses the route vectors' capacity.
    fn rebuild_routes(&mut self) {
        for l in 0..self.participants.len() {
            let mut route = std::mem::take(&mut self.participants[l].route);
            route.sources.clear();
            let listener = &self.participants[l];
            route.hears_everyone = listener.opts.can_hear.is_none();
            for (s, speaker) in self.participants.iter().enumerate() {
                if s == l {
                    continue;
                }
                let speaks_to = speaker
                    .opts
                    .can_speak_to
                    .as_ref()
                    .is_none_or(|to| to.contains(&listener.id));
                let hears = listener
                    .opts
                    .can_hear
                    .as_ref()
                    .is_none_or(|from| from.contains(&speaker.id));
                let in_shared_sum = speaker.opts.can_speak_to.is_none();
                if speaks_to && hears && !(route.hears_everyone && in_shared_sum) {
                    route.sources.push(s);
                }
            }
            self.participants[l].route = route;
        }
    }
}
