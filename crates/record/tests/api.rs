//! Integration tests of callmux-record through its public API (one test binary).

mod api {
    pub(crate) mod analysis;
    pub(crate) mod files;
    pub(crate) mod malformed;
    pub(crate) mod netem;
    pub(crate) mod tail;
    pub(crate) mod timeline;
    pub(crate) mod tools;
}
