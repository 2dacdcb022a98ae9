//! All of mamori-report's tests, one binary.

mod browser;
mod exports;
mod fixture;
mod personal;
mod render;
