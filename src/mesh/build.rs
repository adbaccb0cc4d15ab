//! Builds the mesh model from source objects, validating each one.

use crate::problem::Problem;
use crate::source::InputSet;

use super::model::MeshModel;

/// A built model and the objects rejected while building it.
#[derive(Debug, Default)]
pub struct Built {
    pub model: MeshModel,
    pub problems: Vec<Problem>,
}

pub fn build_model(input: &InputSet) -> Built {
    let _ = input;
    Built::default()
}
