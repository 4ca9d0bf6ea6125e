//! callmux ncco core (skeleton; filled by its issue).
