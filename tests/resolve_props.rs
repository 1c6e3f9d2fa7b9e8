//! Property tests: on random universes and random requirement sets the
//! resolver finds a stack exactly when one exists (decided by brute force
//! with the independent checker), and every stack it returns passes the
//! checker.

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;

mod common;
use common::checker::{Root, Target, check};
use common::universe::{add, empty};

use thoth_rs::advise::{AdviseError, Run, candidate_query, resolve_roots};
use thoth_rs::environment::TargetEnvironment;
use thoth_rs::kb::memory::MemoryKb;
use thoth_rs::policy::RecommendationType;
use thoth_rs::prescription::Prescriptions;
use thoth_rs::resolve::{ResolveError, RootRequirement, SearchRules};

const NAMES: [&str; 5] = ["alpha", "beta", "gamma", "delta", "epsilon"];

/// A universe decoded from random bytes: `n` packages with 1–3 versions,
/// each release depending on some of the others with a random specifier.
fn universe(bytes: &[u8]) -> (MemoryKb, usize, Vec<usize>) {
    let mut it = bytes.iter().copied().cycle();
    let mut next = move || it.next().unwrap();
    let n = 2 + (next() % 4) as usize;
    let counts: Vec<usize> = (0..n).map(|_| 1 + (next() % 3) as usize).collect();
    let mut kb = empty();
    for i in 0..n {
        let mut releases: Vec<(String, Vec<String>)> = Vec::new();
        for v in 1..=counts[i] {
            let mut deps = Vec::new();
            for (j, &count_j) in counts.iter().enumerate() {
                if j == i {
                    continue;
                }
                let k = 1 + (next() as usize % count_j);
                match next() % 8 {
                    0 => deps.push(format!("{}>={k}.0", NAMES[j])),
                    1 => deps.push(format!("{}<{k}.0", NAMES[j])),
                    2 => deps.push(format!("{}=={k}.0", NAMES[j])),
                    3 => deps.push(NAMES[j].to_string()),
                    _ => {}
                }
            }
            releases.push((format!("{v}.0"), deps));
        }
        let owned: Vec<(&str, Vec<&str>)> = releases
            .iter()
            .map(|(v, d)| (v.as_str(), d.iter().map(String::as_str).collect()))
            .collect();
        let refs: Vec<(&str, &[&str])> = owned.iter().map(|(v, d)| (*v, d.as_slice())).collect();
        add(&mut kb, NAMES[i], &refs);
    }
    (kb, n, counts)
}

fn roots(bytes: &[u8], n: usize, counts: &[usize]) -> Vec<Root> {
    let mut out = Vec::new();
    for (i, b) in bytes.iter().enumerate().take(n) {
        let k = 1 + (*b as usize / 8) % counts[i];
        match b % 5 {
            0 => out.push((NAMES[i].to_string(), vec![], format!(">={k}.0"), None)),
            1 => out.push((NAMES[i].to_string(), vec![], format!("<{k}.0"), None)),
            2 => out.push((NAMES[i].to_string(), vec![], String::new(), None)),
            _ => {}
        }
    }
    if out.is_empty() {
        out.push((NAMES[0].to_string(), vec![], String::new(), None));
    }
    out
}

/// Does any assignment of versions (or absence) pass the checker?
fn exists(kb: &MemoryKb, target: &Target, roots: &[Root], n: usize, counts: &[usize]) -> bool {
    let total: usize = counts.iter().map(|c| c + 1).product();
    (0..total).any(|mut code| {
        let mut lock = BTreeMap::new();
        for i in 0..n {
            let choice = code % (counts[i] + 1);
            code /= counts[i] + 1;
            if choice > 0 {
                lock.insert(NAMES[i].to_string(), format!("{choice}.0"));
            }
        }
        check(kb, target, roots, &lock).is_empty()
    })
}

fn run(
    kb: &MemoryKb,
    env: &TargetEnvironment,
    roots: &[Root],
) -> Result<BTreeMap<String, String>, AdviseError> {
    let labels = BTreeMap::new();
    let reqs = roots
        .iter()
        .map(|(name, _, spec, _)| RootRequirement {
            name: name.clone(),
            extras: vec![],
            spec: thoth_rs::python::parse_specifiers(spec).unwrap(),
            marker: None,
            develop: false,
        })
        .collect();
    let rules = SearchRules {
        index_url: common::universe::INDEX.trim_end_matches('/').into(),
        constraints: HashMap::new(),
        ..SearchRules::default()
    };
    let target = thoth_rs::environment::Target::new(env.clone()).unwrap();
    let resolution = resolve_roots(
        kb,
        &Run::adviser(&target, None, RecommendationType::Latest, &labels),
        reqs,
        rules,
        &Prescriptions::default(),
    )?;
    Ok(resolution
        .packages
        .iter()
        .map(|p| (p.name.clone(), p.version.to_string()))
        .collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn finds_a_stack_exactly_when_one_exists(
        shape in proptest::collection::vec(any::<u8>(), 64),
        wanted in proptest::collection::vec(any::<u8>(), 5),
    ) {
        let (kb, n, counts) = universe(&shape);
        let roots = roots(&wanted, n, &counts);
        let env = TargetEnvironment::from_runtime(None, Some("3.11"));
        let target = Target {
            query: candidate_query(&env, None).unwrap(),
            markers: env.marker_environment().unwrap(),
        };
        let expected = exists(&kb, &target, &roots, n, &counts);
        match run(&kb, &env, &roots) {
            Ok(lock) => {
                let problems = check(&kb, &target, &roots, &lock);
                prop_assert!(problems.is_empty(), "invalid stack {:?}: {:?}", lock, problems);
                prop_assert!(expected);
            }
            Err(AdviseError::Resolve(ResolveError::NoSolution(explanation))) => {
                prop_assert!(!expected, "a stack exists but the resolver reported:\n{}", explanation);
                prop_assert!(!explanation.culprits.is_empty());
            }
            Err(other) => prop_assert!(false, "unexpected error {}", other),
        }
    }
}

/// A package whose newest versions all conflict with the newest release of
/// one decided before it is decided first after `CONFLICT_THRESHOLD`
/// conflicts (as uv does): the stack keeps its newest version and the
/// other package gives way. With no way out, the reordered search still
/// proves that no stack exists.
#[test]
fn a_package_that_keeps_conflicting_is_decided_first() {
    let mut kb = empty();
    add(
        &mut kb,
        "alpha",
        &[("1.0", &[]), ("2.0", &[]), ("3.0", &[]), ("4.0", &[])],
    );
    let newer: &[&str] = &["alpha<2.0"];
    add(
        &mut kb,
        "beta",
        &[
            ("1.0", &[]),
            ("2.0", newer),
            ("3.0", newer),
            ("4.0", newer),
            ("5.0", newer),
            ("6.0", newer),
            ("7.0", newer),
        ],
    );
    let env = TargetEnvironment::from_runtime(None, Some("3.11"));
    let target = Target {
        query: candidate_query(&env, None).unwrap(),
        markers: env.marker_environment().unwrap(),
    };
    let roots: Vec<Root> = vec![
        ("alpha".into(), vec![], String::new(), None),
        ("beta".into(), vec![], String::new(), None),
    ];
    let lock = run(&kb, &env, &roots).unwrap();
    assert!(check(&kb, &target, &roots, &lock).is_empty());
    assert_eq!(lock["beta"], "7.0");
    assert_eq!(lock["alpha"], "1.0");
    // Fewer conflicts than the threshold: the earlier decision stands.
    let roots_few: Vec<Root> = vec![
        ("alpha".into(), vec![], String::new(), None),
        ("beta".into(), vec![], "<4.0".into(), None),
    ];
    let lock = run(&kb, &env, &roots_few).unwrap();
    assert_eq!(
        (lock["alpha"].as_str(), lock["beta"].as_str()),
        ("4.0", "1.0")
    );
    // No stack: alpha>=3 and beta>=2 cannot go together.
    let impossible: Vec<Root> = vec![
        ("alpha".into(), vec![], ">=3.0".into(), None),
        ("beta".into(), vec![], ">=2.0".into(), None),
    ];
    assert!(matches!(
        run(&kb, &env, &impossible),
        Err(AdviseError::Resolve(ResolveError::NoSolution(_)))
    ));
}
