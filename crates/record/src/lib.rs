//! callmux record core (skeleton; filled by its issue).
