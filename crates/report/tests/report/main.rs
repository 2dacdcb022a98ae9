//! All of mamori-report's tests, one binary.

mod browser;
mod client;
mod exports;
mod fixture;
mod personal;
mod render;
