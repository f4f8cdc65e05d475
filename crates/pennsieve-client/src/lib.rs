//! pennsieve-client (under construction).
