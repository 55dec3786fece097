//! The guard: Portcullis's session wrapper (twisted.web.guard / Nevow's
//! SessionWrapper). For each request it decides: serve a guard page, answer
//! itself (redirect, 401, 403, 429), or pass the request to the site with the
//! user's avatar. (The orchestrator is in progress; its parts are below.)

pub mod basic;
mod config;
pub mod csrf;
mod events;
pub mod form;
pub mod pages;
pub mod paths;
pub mod throttle;

pub use config::GuardConfig;
pub use events::{AuthEvent, LoginFailureReason, SessionEndReason};
