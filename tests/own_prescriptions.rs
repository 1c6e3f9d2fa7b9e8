//! Every unit of thoth-rs's own prescriptions/ fires in the environment it
//! targets and stays silent elsewhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use thoth_rs::environment::TargetEnvironment;
use thoth_rs::policy::{DecisionType, RecommendationType};
use thoth_rs::prescription::eval::{Context, ImageFacts, PackageRef, Workflow, unit_fires};
use thoth_rs::prescription::{Prescriptions, UnitKind, load};
use thoth_rs::python::{Version, parse_version};

fn ours() -> Prescriptions {
    let rx = load(&[Path::new(env!("CARGO_MANIFEST_DIR")).join("prescriptions")]);
    assert!(rx.errors.is_empty(), "{:?}", rx.errors);
    assert!(rx.warnings.is_empty(), "{:?}", rx.warnings);
    rx
}

/// One scenario: environment, run settings and packages.
#[derive(Clone)]
struct Scenario {
    env: TargetEnvironment,
    rtype: RecommendationType,
    workflow: Workflow,
    library: Option<BTreeMap<String, Vec<String>>>,
    image: Option<ImageFacts>,
    package: Option<(&'static str, &'static str)>,
    resolved: Vec<(&'static str, &'static str)>,
}

fn base() -> Scenario {
    Scenario {
        env: TargetEnvironment::from_runtime(None, Some("3.11")),
        rtype: RecommendationType::Stable,
        workflow: Workflow::Adviser,
        library: None,
        image: None,
        package: None,
        resolved: Vec::new(),
    }
}

impl Scenario {
    fn py(mut self, v: &str) -> Self {
        self.env.python_version = v.into();
        self.env.python_full_version = format!("{v}.0");
        self
    }
    fn os(mut self, name: &str, version: &str) -> Self {
        self.env.os_name = Some(name.into());
        self.env.os_version = Some(version.into());
        self
    }
    fn gpu(mut self, model: Option<&str>, cuda: Option<&str>) -> Self {
        self.env.gpu_model = model.map(str::to_string);
        self.env.cuda_version = cuda.map(str::to_string);
        self
    }
    fn flags(mut self, flags: &[&str]) -> Self {
        self.env.cpu_flags = flags.iter().map(|f| f.to_string()).collect();
        self
    }
    fn rtype(mut self, t: RecommendationType) -> Self {
        self.rtype = t;
        self
    }
    fn monkey(mut self) -> Self {
        self.workflow = Workflow::DependencyMonkey;
        self
    }
    fn uses(mut self, lib: &str, symbol: &str) -> Self {
        self.library = Some(BTreeMap::from([(
            lib.to_string(),
            vec![symbol.to_string()],
        )]));
        self
    }
    fn rpms(mut self, names: &[&str]) -> Self {
        self.image = Some(ImageFacts {
            rpm_packages: names
                .iter()
                .map(|n| BTreeMap::from([("package_name".to_string(), n.to_string())]))
                .collect(),
            ..ImageFacts::default()
        });
        self
    }
    fn pkg(mut self, name: &'static str, version: &'static str) -> Self {
        self.package = Some((name, version));
        self
    }
    fn with(mut self, name: &'static str, version: &'static str) -> Self {
        self.resolved.push((name, version));
        self
    }
}

fn fires(rx: &Prescriptions, unit: &str, s: &Scenario) -> bool {
    let unit = rx
        .units
        .iter()
        .find(|u| u.name == format!("thoth-rs.{unit}"))
        .unwrap_or_else(|| panic!("no unit {unit}"));
    let labels = BTreeMap::new();
    let included = BTreeSet::new();
    let target = thoth_rs::environment::Target::new(s.env.clone()).unwrap();
    let ctx = Context {
        workflow: s.workflow,
        recommendation_type: s.rtype,
        decision_type: DecisionType::All,
        labels: &labels,
        target: &target,
        authenticated: false,
        library_usage: s.library.as_ref(),
        image: s.image.as_ref(),
        included: &included,
    };
    let versions: Vec<(String, Version)> = s
        .package
        .iter()
        .chain(s.resolved.iter())
        .map(|(n, v)| (n.to_string(), parse_version(v).unwrap()))
        .collect();
    let refs: Vec<PackageRef> = versions
        .iter()
        .map(|(n, v)| PackageRef {
            name: n,
            version: v,
            index_url: "http://127.0.0.1/simple",
            develop: false,
        })
        .collect();
    let (package, resolved) = if s.package.is_some() {
        (refs.first(), &refs[1..])
    } else {
        (None, &refs[..])
    };
    unit_fires(unit, &ctx, package, resolved)
}

#[test]
fn every_unit_fires_where_it_should_and_nowhere_else() {
    use RecommendationType::*;
    let rx = ours();
    let cases: Vec<(&str, Scenario, Scenario)> = vec![
        ("PythonEndOfLifeBoot", base().py("3.8"), base().py("3.11")),
        (
            "RHEL7EndOfLifeBoot",
            base().os("rhel", "7.9"),
            base().os("rhel", "8"),
        ),
        (
            "GPUWithoutCUDABoot",
            base().gpu(Some("Tesla T4"), None),
            base().gpu(Some("Tesla T4"), Some("12.1")),
        ),
        (
            "TempfileMktempBoot",
            base().uses("tempfile", "tempfile.mktemp"),
            base().uses("tempfile", "tempfile.mkstemp"),
        ),
        (
            "GitPythonWithoutGitBoot",
            base().rpms(&["bash"]).pkg("gitpython", "3.1.43"),
            base().rpms(&["bash", "git"]).pkg("gitpython", "3.1.43"),
        ),
        (
            "TensorFlowGPUPseudonym",
            base()
                .gpu(Some("Tesla T4"), Some("11.8"))
                .pkg("tensorflow", "2.10.0"),
            base().pkg("tensorflow", "2.10.0"),
        ),
        (
            "TensorFlowAVX2Pseudonym",
            base()
                .rtype(Performance)
                .flags(&["avx", "avx2"])
                .pkg("tensorflow", "2.15.0"),
            base()
                .rtype(Performance)
                .flags(&["avx"])
                .pkg("tensorflow", "2.15.0"),
        ),
        (
            "TensorFlowNeedsAVXSieve",
            base().flags(&["sse4_2"]).pkg("tensorflow", "2.15.0"),
            base().flags(&["avx", "avx2"]).pkg("tensorflow", "2.15.0"),
        ),
        (
            // Unknown CPU flags are not "no AVX".
            "TensorFlowNeedsAVXSieve",
            base().flags(&["sse4_2"]).pkg("tensorflow", "2.15.0"),
            base().pkg("tensorflow", "2.15.0"),
        ),
        (
            "TensorFlow21H5py3Step",
            base().pkg("h5py", "3.1.0").with("tensorflow", "2.1.0"),
            base().pkg("h5py", "2.10.0").with("tensorflow", "2.1.0"),
        ),
        (
            "TensorFlow21Urllib3Step",
            base().pkg("urllib3", "1.26.18").with("tensorflow", "2.1.0"),
            base().pkg("urllib3", "1.26.18").with("tensorflow", "2.4.0"),
        ),
        (
            "TensorFlowCPUAndGPUStride",
            base()
                .with("tensorflow", "2.10.0")
                .with("tensorflow-gpu", "2.10.0"),
            base().with("tensorflow", "2.10.0"),
        ),
        (
            "Pillow830NumPyArrayStep",
            base().pkg("pillow", "8.3.0").with("numpy", "1.21.0"),
            base().pkg("pillow", "8.3.1").with("numpy", "1.21.0"),
        ),
        (
            "OpenCVVariantsWrap",
            base()
                .with("opencv-python", "4.10.0.84")
                .with("opencv-python-headless", "4.10.0.84"),
            base().with("opencv-python-headless", "4.10.0.84"),
        ),
        (
            "Flask1Jinja231Step",
            base().pkg("jinja2", "3.1.2").with("flask", "1.1.4"),
            base().pkg("jinja2", "3.1.2").with("flask", "2.0.0"),
        ),
        (
            "Flask1ItsDangerous21Step",
            base().pkg("itsdangerous", "2.1.2").with("flask", "1.1.4"),
            base().pkg("itsdangerous", "2.0.1").with("flask", "1.1.4"),
        ),
        (
            "FlaskLoginWerkzeug21Step",
            base().pkg("werkzeug", "2.1.0").with("flask-login", "0.5.0"),
            base().pkg("werkzeug", "2.1.0").with("flask-login", "0.6.3"),
        ),
        (
            "FlaskOpenIDSetuptools58Step",
            base()
                .pkg("setuptools", "58.0.0")
                .with("flask-openid", "1.2.5"),
            base()
                .pkg("setuptools", "57.5.0")
                .with("flask-openid", "1.2.5"),
        ),
        (
            "UvloopPerformanceStep",
            base().rtype(Performance).pkg("uvloop", "0.19.0"),
            base().rtype(Stable).pkg("uvloop", "0.19.0"),
        ),
        (
            "Requests2320AdapterSieve",
            base().pkg("requests", "2.32.1"),
            base().pkg("requests", "2.32.2"),
        ),
        (
            "Enum34OnPython3Sieve",
            base().pkg("enum34", "1.1.10"),
            base().py("2.7").pkg("enum34", "1.1.10"),
        ),
        (
            "TypingBackportOnPython37Step",
            base().pkg("typing", "3.7.4.3"),
            base().py("3.6").pkg("typing", "3.7.4.3"),
        ),
        (
            "PandasNumPy2Step",
            base().pkg("numpy", "2.0.0").with("pandas", "2.2.1"),
            base().pkg("numpy", "2.0.0").with("pandas", "2.2.2"),
        ),
        (
            "PandasReadExcelOpenpyxlStep",
            base()
                .uses("pandas", "pandas.read_excel")
                .pkg("pandas", "2.2.3"),
            base().pkg("pandas", "2.2.3"),
        ),
        (
            "RequestsReleaseNotesWrap",
            base().with("requests", "2.32.3"),
            base().monkey().with("requests", "2.32.3"),
        ),
        (
            "NumPyReleaseNotesWrap",
            base().with("numpy", "2.1.0"),
            base().with("scipy", "1.14.0"),
        ),
        (
            "PandasReleaseNotesWrap",
            base().with("pandas", "2.2.3"),
            base().with("polars", "1.0.0"),
        ),
        (
            "FlaskReleaseNotesWrap",
            base().with("flask", "3.0.3"),
            base().with("django", "5.1"),
        ),
        (
            "PytestReleaseNotesWrap",
            base().with("pytest", "8.3.3"),
            base().monkey().with("pytest", "8.3.3"),
        ),
        (
            "NumPy2MigrationWrap",
            base().with("numpy", "2.1.0"),
            base().with("numpy", "1.26.4"),
        ),
        (
            "Urllib32OpenSSLWrap",
            base().os("centos", "7").with("urllib3", "2.2.3"),
            base().os("rhel", "8").with("urllib3", "2.2.3"),
        ),
        (
            "TensorFlowCUDA10Sieve",
            base()
                .gpu(Some("Tesla T4"), Some("10.1"))
                .pkg("tensorflow", "2.4.0"),
            base()
                .gpu(Some("Tesla T4"), Some("11.0"))
                .pkg("tensorflow", "2.4.0"),
        ),
        (
            "TensorFlowCUDA100Sieve",
            base()
                .gpu(Some("Tesla T4"), Some("10.0"))
                .pkg("tensorflow", "2.3.0"),
            base()
                .gpu(Some("Tesla T4"), Some("10.1"))
                .pkg("tensorflow", "2.3.0"),
        ),
        (
            "TensorFlowCUDA101Sieve",
            base()
                .gpu(Some("Tesla T4"), Some("10.1"))
                .pkg("tensorflow", "2.0.0"),
            base()
                .gpu(Some("Tesla T4"), Some("10.0"))
                .pkg("tensorflow", "2.0.0"),
        ),
        (
            "TensorFlowCUDA11Sieve",
            base()
                .gpu(Some("Tesla T4"), Some("11.0"))
                .pkg("tensorflow", "2.3.0"),
            base()
                .gpu(Some("Tesla T4"), Some("11.0"))
                .pkg("tensorflow", "2.4.0"),
        ),
        (
            "TensorFlowCUDA110Sieve",
            base()
                .gpu(Some("Tesla T4"), Some("11.1"))
                .pkg("tensorflow", "2.5.0"),
            base()
                .gpu(Some("Tesla T4"), Some("11.2"))
                .pkg("tensorflow", "2.5.0"),
        ),
        (
            "TensorFlowCUDA112Sieve",
            base()
                .gpu(Some("Tesla T4"), Some("11.2"))
                .pkg("tensorflow", "2.12.0"),
            base()
                .gpu(Some("Tesla T4"), Some("11.8"))
                .pkg("tensorflow", "2.12.0"),
        ),
        (
            "TensorFlowCUDA118Sieve",
            base()
                .gpu(Some("Tesla T4"), Some("11.8"))
                .pkg("tensorflow", "2.15.0"),
            base()
                .gpu(Some("Tesla T4"), Some("11.8"))
                .pkg("tensorflow", "2.14.1"),
        ),
        (
            "TensorFlowCUDA12Sieve",
            base()
                .gpu(Some("Tesla T4"), Some("12.2"))
                .pkg("tensorflow", "2.14.1"),
            base()
                .gpu(Some("Tesla T4"), Some("12.2"))
                .pkg("tensorflow", "2.15.0"),
        ),
        (
            "TensorFlowCUDA120Sieve",
            base()
                .gpu(Some("Tesla T4"), Some("12.1"))
                .pkg("tensorflow", "2.15.0"),
            base()
                .gpu(Some("Tesla T4"), Some("12.2"))
                .pkg("tensorflow", "2.15.0"),
        ),
        (
            "TensorFlowCUDA122Sieve",
            base()
                .gpu(Some("Tesla T4"), Some("12.2"))
                .pkg("tensorflow", "2.16.1"),
            base()
                .gpu(Some("Tesla T4"), Some("12.3"))
                .pkg("tensorflow", "2.16.1"),
        ),
        (
            "TensorFlowCUDA123Sieve",
            base()
                .gpu(Some("Tesla T4"), Some("12.4"))
                .pkg("tensorflow", "2.18.0"),
            base()
                .gpu(Some("Tesla T4"), Some("12.5"))
                .pkg("tensorflow", "2.18.0"),
        ),
        (
            "PyTorchCUDA11Sieve",
            base()
                .gpu(Some("Tesla T4"), Some("11.8"))
                .pkg("torch", "2.1.0"),
            base()
                .gpu(Some("Tesla T4"), Some("12.1"))
                .pkg("torch", "2.1.0"),
        ),
        (
            "PyTorchCUDA10Sieve",
            base()
                .gpu(Some("Tesla T4"), Some("10.2"))
                .pkg("torch", "1.13.1"),
            base()
                .gpu(Some("Tesla T4"), Some("11.7"))
                .pkg("torch", "1.13.1"),
        ),
        (
            // Without a configured CUDA nothing is removed.
            "TensorFlowCUDA12Sieve",
            base()
                .gpu(Some("Tesla T4"), Some("12.2"))
                .pkg("tensorflow", "2.14.1"),
            base().pkg("tensorflow", "2.14.1"),
        ),
        (
            "IntelTensorFlowOneDNNStep",
            base()
                .rtype(Performance)
                .flags(&["avx", "avx2", "avx512f"])
                .pkg("intel-tensorflow", "2.8.0"),
            base()
                .rtype(Performance)
                .flags(&["avx", "avx2"])
                .pkg("intel-tensorflow", "2.8.0"),
        ),
    ];
    let tested: BTreeSet<&str> = cases.iter().map(|c| c.0).collect();
    for unit in &rx.units {
        let short = unit.name.trim_start_matches("thoth-rs.");
        assert!(tested.contains(short), "unit {short} has no test case");
    }
    for (name, fire, silent) in &cases {
        assert!(fires(&rx, name, fire), "{name} should fire");
        assert!(!fires(&rx, name, silent), "{name} should stay silent");
    }
}

#[test]
fn own_set_covers_every_unit_kind_with_links() {
    let rx = ours();
    assert!(rx.units.len() >= 30);
    for kind in UnitKind::ALL {
        assert!(
            rx.units.iter().any(|u| u.kind == kind),
            "no {} unit",
            kind.as_str()
        );
    }
    for u in &rx.units {
        let has_link = u
            .run()
            .stack_info
            .iter()
            .chain(u.run().justification.iter())
            .any(|m| !m.link.is_empty())
            || u.run().release_notes.is_some();
        assert!(has_link, "{} has no link", u.name);
    }
    assert_eq!(
        rx.namespaces.get("thoth-rs").map(String::as_str),
        Some("2026.11")
    );
}
