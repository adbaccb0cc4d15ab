//! The build pipeline of `serve`: source input -> mesh model -> translator. The build loop: each settled change of the input becomes a mesh model, then a
//! translator (reusing what the previous generation built where nothing changed), installed
//! in the generator; the generation number then tells the xDS server to push.

pub mod debounce;
pub mod generator;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

use crate::mesh::build::ModelBuilder;
use crate::source::InputSet;
use crate::translate::Translator;
use debounce::next_settled;
use generator::MeshGenerator;

/// Debounce settings: wait for `quiet` without changes, at most `max` after the first.
#[derive(Debug, Clone, Copy)]
pub struct Debounce {
    pub quiet: Duration,
    pub max: Duration,
}

/// Runs until the input source goes away.
pub async fn run(
    mut inputs: watch::Receiver<Option<Arc<InputSet>>>,
    generator: Arc<MeshGenerator>,
    generations: watch::Sender<u64>,
    debounce: Debounce,
) {
    let mut generation = 0u64;
    let mut builder = ModelBuilder::default();
    let mut reported = BTreeSet::new();
    loop {
        let input = inputs.borrow_and_update().clone();
        if let Some(input) = input {
            generation += 1;
            // Building and translating are CPU work: keep them off the async workers.
            let problems = tokio::task::block_in_place(|| {
                build_generation(&mut builder, &input, &generator, generation)
            });
            log_problem_changes(&reported, &problems);
            info!(
                generation,
                objects = input.objects.len(),
                problems = problems.len(),
                "configuration loaded"
            );
            reported = problems;
            let _ = generations.send(generation);
        }
        if !next_settled(&mut inputs, debounce.quiet, debounce.max).await {
            break;
        }
    }
}

/// Builds and installs one generation; returns its input problems.
fn build_generation(
    builder: &mut ModelBuilder,
    input: &InputSet,
    generator: &MeshGenerator,
    generation: u64,
) -> BTreeSet<String> {
    let built = builder.build(input);
    let problems: Vec<String> = built.all_problems(input).map(|p| p.to_string()).collect();
    let model = Arc::new(built.model);
    let translator = match generator.current() {
        Some((_, previous)) => Translator::next(&previous, model),
        None => Translator::new(model),
    };
    let current = problems.iter().cloned().collect();
    generator.install(translator, generation, problems);
    current
}

/// Each problem is logged when it appears and when it is gone, not on every rebuild.
fn log_problem_changes(before: &BTreeSet<String>, now: &BTreeSet<String>) {
    for problem in now.difference(before) {
        warn!(%problem, "rejected input");
    }
    for problem in before.difference(now) {
        info!(%problem, "input problem resolved");
    }
}
