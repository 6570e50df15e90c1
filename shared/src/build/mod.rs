//! `img-build`: a Dockerfile and its context turned into an image in the
//! store, one cached step at a time.

pub mod context;
pub mod copy;
pub mod layer;
