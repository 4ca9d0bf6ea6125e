//! callmux media core (skeleton; filled by its issue).
