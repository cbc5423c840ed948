//! Health: what a resource's faults mean, and when a faulted accelerator
//! may be chosen again. Pure: events and time in, verdicts out.
//!
//! An XID is an event, not a state: "XID 79 at 10:02" stays true of the GPU
//! until there is evidence it was dealt with. So each accelerator keeps its
//! latched faults ([`GpuFaults`]), and a latch is cleared only by the
//! evidence its class needs: a restart of the machine for reset- and
//! reboot-class faults, staff (audited, with a reason) for every class.
//! A GPU whose reset- or reboot-class faults keep coming back is escalated
//! to "needs hardware inspection", which only staff clear.

use std::{collections::BTreeMap, sync::LazyLock};

use crate::i18n::Text;

/// How bad a finding is. Ordered: `Critical` is the greatest.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 3] = [Severity::Info, Severity::Warning, Severity::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    /// The severity as people read it.
    pub fn text(self) -> Text {
        Text::new(&format!("severity.{}", self.as_str()))
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// A resource's health, from the worst of its findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Healthy,
    Degraded,
    Critical,
    /// Its host is not reporting: nothing current is known.
    Unknown,
}

impl Health {
    pub fn of(worst: Option<Severity>) -> Self {
        match worst {
            Some(Severity::Critical) => Health::Critical,
            Some(Severity::Warning) => Health::Degraded,
            Some(Severity::Info) | None => Health::Healthy,
        }
    }
}

/// What an XID says about the GPU (see `data/xid.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum XidClass {
    Info,
    Application,
    Reset,
    Reboot,
    Inspect,
    /// Not in the catalog.
    Unknown,
}

impl XidClass {
    pub fn severity(self) -> Severity {
        match self {
            XidClass::Info => Severity::Info,
            XidClass::Application | XidClass::Unknown => Severity::Warning,
            XidClass::Reset | XidClass::Reboot | XidClass::Inspect => Severity::Critical,
        }
    }

    /// Does a fault of this class take the GPU out of selection?
    pub fn latches(self) -> bool {
        self.severity() == Severity::Critical
    }

    pub fn as_str(self) -> &'static str {
        match self {
            XidClass::Info => "info",
            XidClass::Application => "application",
            XidClass::Reset => "reset",
            XidClass::Reboot => "reboot",
            XidClass::Inspect => "inspect",
            XidClass::Unknown => "unknown",
        }
    }
}

/// The XID catalog as shipped: each code's class. Names and actions are
/// words of the catalog ([`Text`]), in both languages.
#[derive(Debug)]
pub struct XidCatalog {
    pub version: String,
    classes: BTreeMap<u64, XidClass>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    version: String,
    class: Vec<ClassEntry>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassEntry {
    class: XidClass,
    codes: Vec<u64>,
}

/// The catalog compiled into the binary.
pub static XIDS: LazyLock<XidCatalog> = LazyLock::new(|| {
    XidCatalog::parse(include_str!("../data/xid.toml")).expect("the shipped XID catalog parses")
});

impl XidCatalog {
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: CatalogFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut classes = BTreeMap::new();
        for entry in file.class {
            for code in entry.codes {
                if classes.insert(code, entry.class).is_some() {
                    return Err(format!("XID {code} is in two classes"));
                }
            }
        }
        Ok(Self {
            version: file.version,
            classes,
        })
    }

    pub fn class(&self, code: u64) -> XidClass {
        self.classes
            .get(&code)
            .copied()
            .unwrap_or(XidClass::Unknown)
    }

    /// What staff should do about it.
    pub fn action(&self, code: u64) -> Text {
        Text::new(&format!("xid.action.{}", self.class(code).as_str()))
    }

    pub fn name(&self, code: u64) -> Text {
        let name = Text::new(&format!("xid.name.{code}"));
        if name.known() {
            name
        } else {
            Text::new("xid.unknown")
        }
    }

    /// Every listed code with its class.
    pub fn entries(&self) -> impl Iterator<Item = (u64, XidClass)> + '_ {
        self.classes.iter().map(|(code, class)| (*code, *class))
    }
}

/// Reset- or reboot-class faults on one GPU within this window…
pub const ESCALATE_WINDOW_MS: u64 = 7 * 24 * 3_600_000;
/// …this many times mean it needs hardware inspection.
pub const ESCALATE_AFTER: usize = 3;
/// An application-class XID is a warning for this long after the last one.
pub const APPLICATION_CLEAR_MS: u64 = 10 * 60_000;

/// A fault that holds until its evidence clears it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Latch {
    pub xid: u64,
    pub class: XidClass,
    pub at_ms: u64,
}

/// One XID as it happened.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct XidSeen {
    pub xid: u64,
    pub at_ms: u64,
    pub message: Option<String>,
}

/// One accelerator's fault record.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct GpuFaults {
    /// Faults that keep the GPU out of selection, oldest first.
    pub latched: Vec<Latch>,
    /// Counts per XID code since the host's last boot (not only the last code).
    pub counts: BTreeMap<u64, u64>,
    /// The latest events, newest last (at most [`GpuFaults::RECENT`]).
    pub recent: Vec<XidSeen>,
    /// When reset- and reboot-class faults happened, for escalation.
    resets: Vec<u64>,
    pub needs_inspection: bool,
}

impl GpuFaults {
    pub const RECENT: usize = 16;

    /// Takes in one XID.
    pub fn record(&mut self, xid: u64, at_ms: u64, message: Option<String>, catalog: &XidCatalog) {
        let class = catalog.class(xid);
        *self.counts.entry(xid).or_default() += 1;
        self.recent.push(XidSeen {
            xid,
            at_ms,
            message,
        });
        if self.recent.len() > Self::RECENT {
            self.recent.remove(0);
        }
        if matches!(class, XidClass::Reset | XidClass::Reboot) {
            self.resets
                .retain(|t| at_ms.saturating_sub(*t) < ESCALATE_WINDOW_MS);
            self.resets.push(at_ms);
            if self.resets.len() >= ESCALATE_AFTER {
                self.needs_inspection = true;
            }
        }
        if class.latches() && !self.latched.iter().any(|l| l.xid == xid) {
            self.latched.push(Latch { xid, class, at_ms });
        }
    }

    /// The machine restarted: reset- and reboot-class faults are dealt
    /// with; counts start again. Inspection still waits for staff.
    pub fn rebooted(&mut self) {
        self.latched
            .retain(|l| !matches!(l.class, XidClass::Reset | XidClass::Reboot));
        self.counts.clear();
    }

    /// Staff marked the GPU healthy.
    pub fn cleared_by_staff(&mut self) {
        self.latched.clear();
        self.resets.clear();
        self.needs_inspection = false;
    }

    /// Why the GPU may not be chosen, if it may not.
    pub fn unselectable(&self) -> Option<Text> {
        if self.needs_inspection {
            return Some(Text::new("unselectable.inspection").arg("count", ESCALATE_AFTER));
        }
        let first = self.latched.first()?;
        Some(Text::new("unselectable.xid").arg("xid", first.xid))
    }

    /// The newest application-class event still within its warning window.
    pub fn application_fault(&self, now_ms: u64, catalog: &XidCatalog) -> Option<&XidSeen> {
        self.recent.iter().rev().find(|e| {
            matches!(
                catalog.class(e.xid),
                XidClass::Application | XidClass::Unknown
            ) && now_ms.saturating_sub(e.at_ms) < APPLICATION_CLEAR_MS
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Lang;

    fn why(g: &GpuFaults) -> Option<String> {
        g.unselectable().map(|t| t.render(Lang::En))
    }

    #[test]
    fn the_shipped_catalog_classes_what_the_issue_names() {
        let c = &*XIDS;
        for code in [13, 31, 43, 45, 68, 94] {
            assert_eq!(c.class(code), XidClass::Application, "{code}");
        }
        for code in [46, 62, 64, 95, 119, 120, 140, 143] {
            assert_eq!(c.class(code), XidClass::Reset, "{code}");
        }
        assert_eq!(c.class(79), XidClass::Reboot);
        for code in [48, 74, 144, 150] {
            assert_eq!(c.class(code), XidClass::Inspect, "{code}");
        }
        assert_eq!(c.class(63), XidClass::Info);
        assert_eq!(c.class(92), XidClass::Info);
        assert_eq!(c.class(9999), XidClass::Unknown);
        assert_eq!(c.name(79).render(Lang::En), "GPU has fallen off the bus");
        assert_eq!(c.name(9999).render(Lang::Zh), "未知 XID");
        // Every code and class has its words in both languages.
        for (code, class) in c.entries() {
            assert!(c.name(code).known(), "XID {code} has no name");
            assert!(c.action(code).known(), "{} has no action", class.as_str());
        }
        assert!(c.action(9999).known());
    }

    #[test]
    fn a_code_in_two_classes_is_refused() {
        let text = r#"version = "x"
[[class]]
class = "info"
codes = [1]
[[class]]
class = "reset"
codes = [1]"#;
        assert_eq!(
            XidCatalog::parse(text).err().as_deref(),
            Some("XID 1 is in two classes")
        );
    }

    #[test]
    fn a_reboot_class_fault_holds_until_the_machine_restarts() {
        let mut g = GpuFaults::default();
        g.record(79, 1_000, None, &XIDS);
        assert_eq!(why(&g).as_deref(), Some("unhealthy: XID 79"));
        g.record(13, 2_000, None, &XIDS);
        assert_eq!(g.counts.get(&79), Some(&1));
        assert_eq!(why(&g).as_deref(), Some("unhealthy: XID 79"));
        g.rebooted();
        assert_eq!(g.unselectable(), None);
    }

    #[test]
    fn an_application_fault_warns_for_a_while_and_never_latches() {
        let mut g = GpuFaults::default();
        g.record(13, 1_000, Some("pid=4242".into()), &XIDS);
        assert_eq!(g.unselectable(), None);
        assert_eq!(g.application_fault(2_000, &XIDS).map(|e| e.xid), Some(13));
        assert_eq!(
            g.application_fault(1_000 + APPLICATION_CLEAR_MS, &XIDS),
            None
        );
    }

    #[test]
    fn an_inspection_fault_is_cleared_only_by_staff() {
        let mut g = GpuFaults::default();
        g.record(48, 1_000, None, &XIDS);
        g.rebooted();
        assert_eq!(why(&g).as_deref(), Some("unhealthy: XID 48"));
        g.cleared_by_staff();
        assert_eq!(g.unselectable(), None);
    }

    #[test]
    fn repeated_reset_faults_escalate_to_inspection() {
        let mut g = GpuFaults::default();
        let day = 24 * 3_600_000;
        for (i, xid) in [62u64, 79, 119].into_iter().enumerate() {
            g.record(xid, 1_000 + i as u64 * day, None, &XIDS);
            g.rebooted();
        }
        assert!(g.needs_inspection);
        assert!(why(&g).is_some_and(|r| r.starts_with("needs hardware inspection")));
        // Spread over more than the window, they do not.
        let mut spread = GpuFaults::default();
        for i in 0..3u64 {
            spread.record(62, i * 4 * day, None, &XIDS);
            spread.rebooted();
        }
        assert!(!spread.needs_inspection);
    }
}
