//! thoth-rs's own prescriptions acting inside the resolver: a unit's
//! "not acceptable" is a conflict the search backtracks from (whatever the
//! order packages are resolved in), sieves remove versions with a reason the
//! report shows, and units only run for the recommendation types they name.

use std::collections::BTreeMap;
use std::path::Path;

mod common;
use common::universe::{INDEX, add, empty};

use thoth_rs::advise::{AdviseError, Run, resolve_roots};
use thoth_rs::environment::TargetEnvironment;
use thoth_rs::kb::memory::MemoryKb;
use thoth_rs::policy::RecommendationType;
use thoth_rs::prescription::Prescriptions;
use thoth_rs::resolve::{Resolution, ResolveError, RootRequirement, SearchRules};

fn own() -> Prescriptions {
    let p =
        thoth_rs::prescription::load(
            &[Path::new(env!("CARGO_MANIFEST_DIR")).join("prescriptions")],
        );
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    p
}

fn resolve(
    kb: &MemoryKb,
    roots: &[&str],
    kind: RecommendationType,
) -> Result<Resolution, AdviseError> {
    let env = TargetEnvironment::from_runtime(None, Some("3.11"));
    let labels = BTreeMap::new();
    let reqs = roots
        .iter()
        .map(|text| {
            RootRequirement::from_requirement(
                &thoth_rs::python::parse_requirement(text).unwrap(),
                false,
            )
        })
        .collect();
    let target = thoth_rs::environment::Target::new(env.clone()).unwrap();
    resolve_roots(
        kb,
        &Run::adviser(&target, None, kind, &labels),
        reqs,
        SearchRules {
            index_url: INDEX.trim_end_matches('/').into(),
            ..SearchRules::default()
        },
        &own(),
    )
}

fn version(r: &Resolution, name: &str) -> String {
    r.packages
        .iter()
        .find(|p| p.name == name)
        .map(|p| p.version.to_string())
        .unwrap_or_else(|| panic!("{name} not resolved"))
}

fn imaging() -> MemoryKb {
    let mut kb = empty();
    add(&mut kb, "pillow", &[("8.3.0", &[]), ("8.2.0", &[])]);
    add(&mut kb, "numpy", &[("1.21.0", &[])]);
    kb
}

#[test]
fn a_refusing_step_makes_the_search_backtrack_in_either_order() {
    let kb = imaging();
    for roots in [["pillow", "numpy"], ["numpy", "pillow"]] {
        let r = resolve(&kb, &roots, RecommendationType::Stable).unwrap();
        assert_eq!(version(&r, "pillow"), "8.2.0", "{roots:?}");
        assert!(r.statistics.search.refused >= 1);
        let warned = r
            .stack_info
            .iter()
            .any(|m| m.link.iter().any(|l| l.contains("Pillow/issues/5571")));
        assert!(warned, "{:?}", r.stack_info);
    }
    // Without numpy in the stack the unit has nothing to say.
    let r = resolve(&kb, &["pillow"], RecommendationType::Stable).unwrap();
    assert_eq!(version(&r, "pillow"), "8.3.0");
}

#[test]
fn units_run_only_for_their_recommendation_types() {
    // Pillow830NumPyArrayStep names stable/performance/security/testing.
    let r = resolve(&imaging(), &["pillow", "numpy"], RecommendationType::Latest).unwrap();
    assert_eq!(version(&r, "pillow"), "8.3.0");
}

/// An advise-style exploration of `roots` on `kb`: the AUTO predictor for
/// `kind`, seeded with `seed`, 50 stacks, ending with the polish pass.
fn explore(
    kb: &MemoryKb,
    env: &TargetEnvironment,
    roots: &[&str],
    kind: RecommendationType,
    seed: u64,
) -> Resolution {
    let labels = BTreeMap::new();
    let roots = roots
        .iter()
        .map(|t| {
            RootRequirement::from_requirement(
                &thoth_rs::python::parse_requirement(t).unwrap(),
                false,
            )
        })
        .collect();
    let mut predictor = thoth_rs::predict::build(
        thoth_rs::predict::auto(thoth_rs::policy::PredictorKind::Auto, Some(kind), None),
        seed,
        &thoth_rs::predict::PredictorOptions::default(),
    );
    let target = thoth_rs::environment::Target::new(env.clone()).unwrap();
    thoth_rs::advise::explore_roots(
        kb,
        &Run::adviser(&target, None, kind, &labels),
        roots,
        SearchRules {
            index_url: INDEX.trim_end_matches('/').into(),
            ..SearchRules::default()
        },
        &own(),
        predictor.as_mut(),
        &thoth_rs::resolve::Budget {
            limit: 50,
            count: 1,
            time: None,
            distinct: None,
            polish: true,
        },
    )
    .unwrap()
    .products
    .remove(0)
}

#[test]
fn a_conflict_caused_by_a_unit_names_the_unit() {
    let err = resolve(
        &imaging(),
        &["pillow==8.3.0", "numpy"],
        RecommendationType::Stable,
    )
    .expect_err("no stack");
    let AdviseError::Resolve(ResolveError::NoSolution(x)) = err else {
        panic!("{err}")
    };
    let text = x.to_string();
    assert!(text.contains("Pillow830NumPyArrayStep"), "{text}");
}

#[test]
fn a_group_step_steers_a_transitive_dependency() {
    let mut kb = empty();
    add(
        &mut kb,
        "flask",
        &[("1.1.4", &["jinja2>=2.10.1", "itsdangerous>=0.24"])],
    );
    add(&mut kb, "jinja2", &[("3.1.2", &[]), ("3.0.3", &[])]);
    add(&mut kb, "itsdangerous", &[("2.1.2", &[]), ("2.0.1", &[])]);
    let r = resolve(&kb, &["flask<2"], RecommendationType::Latest).unwrap();
    assert_eq!(version(&r, "jinja2"), "3.0.3");
    assert_eq!(version(&r, "itsdangerous"), "2.0.1");
    let jinja = r.packages.iter().find(|p| p.name == "jinja2").unwrap();
    assert_eq!(jinja.newer_rejected[0].0, "3.1.2");
}

#[test]
fn a_sieve_removes_versions_and_says_so() {
    let mut kb = empty();
    add(
        &mut kb,
        "requests",
        &[("2.32.1", &[]), ("2.32.0", &[]), ("2.31.0", &[])],
    );
    let r = resolve(&kb, &["requests"], RecommendationType::Stable).unwrap();
    assert_eq!(version(&r, "requests"), "2.31.0");
    let p = &r.packages[0];
    assert_eq!(p.newer_rejected.len(), 2);
    assert!(
        p.newer_rejected
            .iter()
            .all(|(_, why)| why.contains("Requests2320AdapterSieve")),
        "{:?}",
        p.newer_rejected
    );
    // latest is not in the unit's recommendation types.
    let r = resolve(&kb, &["requests"], RecommendationType::Latest).unwrap();
    assert_eq!(version(&r, "requests"), "2.32.1");
}

#[test]
fn a_pseudonym_offers_an_alternative_when_the_package_cannot_fit() {
    // TensorFlowAVX2Pseudonym (performance, AVX2 CPUs) offers intel-tensorflow
    // at the same version; here only the alternative fits numpy<2.
    let mut kb = empty();
    add(&mut kb, "tensorflow", &[("2.15.0", &["numpy>=2"])]);
    add(&mut kb, "intel-tensorflow", &[("2.15.0", &["numpy<2"])]);
    add(&mut kb, "numpy", &[("2.0.0", &[]), ("1.26.4", &[])]);
    let mut env = TargetEnvironment::from_runtime(None, Some("3.11"));
    env.cpu_flags = vec!["avx".into(), "avx2".into()];
    let labels = BTreeMap::new();
    let roots = ["tensorflow", "numpy<2"]
        .iter()
        .map(|t| {
            RootRequirement::from_requirement(
                &thoth_rs::python::parse_requirement(t).unwrap(),
                false,
            )
        })
        .collect::<Vec<_>>();
    let rules = || SearchRules {
        index_url: INDEX.trim_end_matches('/').into(),
        ..SearchRules::default()
    };
    let target = thoth_rs::environment::Target::new(env.clone()).unwrap();
    let run = |kind| Run::adviser(&target, None, kind, &labels);
    let r = resolve_roots(
        &kb,
        &run(RecommendationType::Performance),
        roots.clone(),
        rules(),
        &own(),
    )
    .unwrap();
    assert_eq!(version(&r, "intel-tensorflow"), "2.15.0");
    assert!(r.packages.iter().all(|p| p.name != "tensorflow"));
    assert!(
        r.skipped["tensorflow"].contains("intel-tensorflow==2.15.0"),
        "{:?}",
        r.skipped
    );
    // The unit is not part of a stable run: no stack then.
    assert!(
        resolve_roots(
            &kb,
            &run(RecommendationType::Stable),
            roots,
            rules(),
            &own()
        )
        .is_err()
    );
}

#[test]
fn a_pseudonym_is_an_ordinary_candidate_the_score_can_choose() {
    // Both builds fit. On an AVX-512 CPU under performance our step scores
    // the Intel build of TensorFlow 2.8 higher, so an exploration ends with
    // it in place of tensorflow; under stable the pseudonym is not offered
    // and tensorflow stays.
    let mut kb = empty();
    add(&mut kb, "tensorflow", &[("2.8.0", &["numpy>=1.20"])]);
    add(&mut kb, "intel-tensorflow", &[("2.8.0", &["numpy>=1.20"])]);
    add(&mut kb, "numpy", &[("1.26.4", &[])]);
    let mut env = TargetEnvironment::from_runtime(None, Some("3.11"));
    env.cpu_flags = vec!["avx".into(), "avx2".into(), "avx512f".into()];
    for seed in [1, 2, 3] {
        let r = explore(
            &kb,
            &env,
            &["tensorflow"],
            RecommendationType::Performance,
            seed,
        );
        assert_eq!(version(&r, "intel-tensorflow"), "2.8.0", "seed {seed}");
        assert!(r.packages.iter().all(|p| p.name != "tensorflow"));
        assert_eq!(
            r.skipped["tensorflow"],
            "replaced by intel-tensorflow==2.8.0 (unit thoth-rs.TensorFlowAVX2Pseudonym)"
        );
        assert!((r.score - 0.2).abs() < 1e-9, "{}", r.score);
        let r = explore(&kb, &env, &["tensorflow"], RecommendationType::Stable, seed);
        assert_eq!(version(&r, "tensorflow"), "2.8.0");
        assert!(r.skipped.is_empty(), "{:?}", r.skipped);
    }
}

#[test]
fn a_release_held_back_for_a_score_elsewhere_names_what_the_newer_one_goes_without() {
    // app 1.0 brings uvloop, which UvloopPerformanceStep scores +0.2 under
    // performance; app 2.0 does without. The stack keeps app 1.0, and the
    // reason 2.0 was not taken names what it goes without, not a bare score.
    let mut kb = empty();
    add(&mut kb, "app", &[("2.0", &[]), ("1.0", &["uvloop>=0.17"])]);
    add(&mut kb, "uvloop", &[("0.19.0", &[])]);
    let env = TargetEnvironment::from_runtime(None, Some("3.11"));
    let r = explore(&kb, &env, &["app"], RecommendationType::Performance, 1);
    assert_eq!(version(&r, "app"), "1.0");
    assert_eq!(version(&r, "uvloop"), "0.19.0");
    let app = r.packages.iter().find(|p| p.name == "app").unwrap();
    let (newer, why) = app.held_back.as_ref().expect("app is held back");
    assert_eq!(newer, "2.0");
    assert!(
        why.starts_with(
            "a stack with it scores 0.20 lower: without uvloop 0.19.0 (+0.20: uvloop replaces"
        ),
        "{why}"
    );
}
