//! The build pipeline of `serve`: source input -> mesh model -> translator. The build loop: each settled change of the input becomes a mesh model, then a
//! translator (reusing what the previous generation built where nothing changed), installed
//! in the generator; the generation number then tells the xDS server to push.

pub mod debounce;
pub mod generator;
pub mod identity_warnings;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

use crate::mesh::build::ModelBuilder;
use crate::source::InputSet;
use crate::translate::scope::TranslateOptions;
use crate::translate::Translator;
use debounce::next_settled_since;
use generator::MeshGenerator;

/// Debounce settings: wait for `quiet` without changes, at most `max` after the first.
#[derive(Debug, Clone, Copy)]
pub struct Debounce {
    pub quiet: Duration,
    pub max: Duration,
}

/// Runs until the input source goes away. Unless `allow_empty` is set, a first
/// configuration without any service is not served (see `build_generation`).
pub async fn run(
    mut inputs: watch::Receiver<Option<Arc<InputSet>>>,
    generator: Arc<MeshGenerator>,
    generations: watch::Sender<u64>,
    debounce: Debounce,
    allow_empty: bool,
    options: watch::Receiver<Arc<TranslateOptions>>,
    jwks: watch::Receiver<crate::source::jwks::FetchedJwks>,
) {
    let mut generation = 0u64;
    let mut builder = ModelBuilder::default();
    let mut reported = BTreeSet::new();
    // When the input change behind the next generation was seen (the first load: now).
    let mut seen = std::time::Instant::now();
    loop {
        let input = inputs.borrow_and_update().clone();
        if let Some(input) = input {
            // The source sets these (from the mesh config) before the input they go with.
            let options = options.borrow().clone();
            let fetched = jwks.borrow().clone();
            let refuse_empty = generation == 0 && !allow_empty;
            // Building and translating are CPU work: keep them off the async workers.
            let built = tokio::task::block_in_place(|| {
                build_generation(
                    &mut builder,
                    &input,
                    &generator,
                    generation + 1,
                    refuse_empty,
                    &options,
                    &fetched,
                )
            });
            let problems = match built {
                Built::Installed(problems) => {
                    generation += 1;
                    generator.seen(generation, seen);
                    info!(
                        generation,
                        objects = input.objects.len(),
                        problems = problems.len(),
                        "configuration loaded"
                    );
                    let _ = generations.send(generation);
                    problems
                }
                Built::Empty(problems) => {
                    warn!(
                        objects = input.objects.len(),
                        problems = problems.len(),
                        "not serving a first configuration without any service: proxies that \
                         reconnect would lose theirs (a directory still being mounted?); \
                         waiting for a service, or pass --allow-empty-config"
                    );
                    problems
                }
            };
            log_problem_changes(&reported, &problems);
            reported = problems;
        }
        match next_settled_since(&mut inputs, debounce.quiet, debounce.max).await {
            Some(at) => seen = at,
            None => break,
        }
    }
}

/// What became of one input set.
enum Built {
    /// Installed as the new generation; its input problems.
    Installed(BTreeSet<String>),
    /// Not installed: a first configuration with no service; its input problems.
    Empty(BTreeSet<String>),
}

/// Builds and installs one generation, unless `refuse_empty` and it has no service.
fn build_generation(
    builder: &mut ModelBuilder,
    input: &InputSet,
    generator: &MeshGenerator,
    generation: u64,
    refuse_empty: bool,
    options: &Arc<TranslateOptions>,
    jwks: &crate::source::jwks::FetchedJwks,
) -> Built {
    let mut built = builder.build(input);
    built.model.fetched_jwks = BTreeMap::clone(jwks);
    let problems: Vec<String> = built.all_problems(input).map(|p| p.to_string()).collect();
    let current = problems.iter().cloned().collect();
    if refuse_empty && built.model.services.is_empty() {
        return Built::Empty(current);
    }
    let model = Arc::new(built.model);
    let translator = match generator.current() {
        Some((_, previous)) if previous.options() == &**options => {
            Translator::next(&previous, model)
        }
        // First, or the mesh config changed: nothing built before can be reused.
        _ => Translator::with_options(model, options.clone()),
    };
    generator.install(translator, generation, problems);
    Built::Installed(current)
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
