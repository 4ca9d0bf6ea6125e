//! callmux webhook core (skeleton; filled by its issue).
