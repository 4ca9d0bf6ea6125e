//! callmux sip core (skeleton; filled by its issue).
