//! Accelerator models as vendors' libraries name them and as demands and
//! price lists ask for them: the one parser identifiers, selection and
//! prices share.
//!
//! An accelerator is matched by its *model key*: vendor, kind and name,
//! lower-cased ("huawei npu ascend 910b3", "nvidia gpu nvidia h100 80gb
//! hbm3"). A demand's vendor may be any of the vendor's names (华为, ascend,
//! huawei), its kind one of gpu/npu/mlu/dcu/xpu/gcu, its model whole words
//! of the name, where a word ending in a letter also finds the numbered
//! variants of it ("910b" finds "910b3", "h100" does not find "h1000").

use suanli_protocol::model::{AcceleratorKind, AcceleratorVendor, GpuInventory};

/// `vendor kind name`, lower-cased.
pub fn model_key(gpu: &GpuInventory) -> String {
    let name = gpu
        .name
        .as_deref()
        .or(gpu.model.as_deref())
        .unwrap_or("unknown");
    format!("{} {} {name}", gpu.vendor.as_str(), gpu.kind.as_str()).to_lowercase()
}

/// The vendor a demand's word names, in English, pinyin, Chinese or brand.
pub fn vendor_named(word: &str) -> Option<AcceleratorVendor> {
    Some(match word {
        "nvidia" | "英伟达" => AcceleratorVendor::Nvidia,
        "huawei" | "ascend" | "华为" | "昇腾" => AcceleratorVendor::Huawei,
        "hygon" | "haiguang" | "海光" => AcceleratorVendor::Hygon,
        "amd" | "instinct" => AcceleratorVendor::Amd,
        "cambricon" | "寒武纪" => AcceleratorVendor::Cambricon,
        "iluvatar" | "corex" | "天数" | "天数智芯" => AcceleratorVendor::Iluvatar,
        "metax" | "沐曦" => AcceleratorVendor::Metax,
        "moore_threads" | "moorethreads" | "mthreads" | "摩尔线程" => {
            AcceleratorVendor::MooreThreads
        }
        "kunlunxin" | "昆仑芯" => AcceleratorVendor::Kunlunxin,
        "enflame" | "燧原" => AcceleratorVendor::Enflame,
        _ => return None,
    })
}

pub fn kind_named(word: &str) -> Option<AcceleratorKind> {
    Some(match word {
        "gpu" => AcceleratorKind::Gpu,
        "npu" => AcceleratorKind::Npu,
        "mlu" => AcceleratorKind::Mlu,
        "dcu" | "hcu" => AcceleratorKind::Dcu,
        "xpu" => AcceleratorKind::Xpu,
        "gcu" => AcceleratorKind::Gcu,
        _ => return None,
    })
}

fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
}

/// Does `model_key` (see [`model_key`]) name the model asked for? Every
/// word of the demand must be a word of the name, or, for a word ending in
/// a letter, the stem of a numbered variant ("910b" → "910b3").
pub fn model_matches(model_key: &str, wanted: &str) -> bool {
    let have: Vec<&str> = words(model_key).collect();
    words(wanted).all(|w| {
        have.iter().any(|h| {
            *h == w
                || (w.ends_with(|c: char| c.is_ascii_alphabetic())
                    && h.strip_prefix(w)
                        .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_digit())))
        })
    })
}

/// Does the accelerator of `model_key` come from the vendor `wanted` names?
/// A word no vendor is known by is looked for in the name itself.
pub fn vendor_matches(model_key: &str, wanted: &str) -> bool {
    match vendor_named(wanted) {
        Some(vendor) => model_key.split(' ').next() == Some(vendor.as_str()),
        None => words(model_key).any(|w| w == wanted),
    }
}

/// Is the accelerator of `model_key` of the kind asked for?
pub fn kind_matches(model_key: &str, kind: AcceleratorKind) -> bool {
    model_key.split(' ').nth(1) == Some(kind.as_str())
}

/// Words of a name that are not the model: brands, memory sizes, form factors.
fn is_model_word(word: &str) -> bool {
    const NOT_MODELS: &[&str] = &[
        "NVIDIA",
        "TESLA",
        "GEFORCE",
        "QUADRO",
        "RTX",
        "ASCEND",
        "HYGON",
        "AMD",
        "INSTINCT",
        "ILUVATAR",
        "CAMBRICON",
        "PCIE",
        "SXM",
        "SXM2",
        "SXM4",
        "SXM5",
        "HBM",
        "HBM2",
        "HBM2E",
        "HBM3",
        "HBM3E",
        "NVL",
        "AI",
    ];
    let upper = word.to_ascii_uppercase();
    let memory = upper
        .strip_suffix("GB")
        .or_else(|| upper.strip_suffix('G'))
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
    word.chars().any(|c| c.is_ascii_digit()) && !memory && !NOT_MODELS.contains(&upper.as_str())
}

/// The model token of an accelerator's name, for its identifier's spec
/// code: "NVIDIA A800-SXM4-80GB" → "A800", "Ascend 910B3" → "910B3",
/// "Hygon K100_AI" → "K100", "NVIDIA GeForce RTX 4090" → "4090".
pub fn model_token(name: &str) -> Option<String> {
    name.split(|c: char| c.is_whitespace() || c == '-' || c == '_' || c == ',')
        .map(|w| {
            w.chars()
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>()
        })
        .find(|w| is_model_word(w))
        .map(|w| w.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(vendor: AcceleratorVendor, name: &str) -> String {
        model_key(&GpuInventory {
            vendor,
            kind: vendor.kind(),
            name: Some(name.into()),
            ..GpuInventory::default()
        })
    }

    /// Names as each vendor's library reports them.
    #[test]
    fn model_tokens_of_real_names() {
        for (name, token) in [
            ("NVIDIA H100 80GB HBM3", "H100"),
            ("NVIDIA A800-SXM4-80GB", "A800"),
            ("NVIDIA A100-SXM4-80GB", "A100"),
            ("NVIDIA A100-PCIE-40GB", "A100"),
            ("Tesla V100-SXM2-32GB", "V100"),
            ("NVIDIA GeForce RTX 4090", "4090"),
            ("NVIDIA H20", "H20"),
            ("NVIDIA L20", "L20"),
            ("Tesla T4", "T4"),
            ("Ascend 910B3", "910B3"),
            ("Ascend 910B", "910B"),
            ("Ascend 310P3", "310P3"),
            ("Hygon K100_AI", "K100"),
            ("Hygon Z100L", "Z100L"),
            ("AMD Instinct MI300X", "MI300X"),
            ("Iluvatar BI-V150", "V150"),
            ("MLU370-X8", "MLU370"),
        ] {
            assert_eq!(model_token(name).as_deref(), Some(token), "{name}");
        }
        assert_eq!(model_token("NVIDIA Graphics Device"), None);
    }

    #[test]
    fn models_match_across_vendors() {
        let ascend = key(AcceleratorVendor::Huawei, "Ascend 910B3");
        let hygon = key(AcceleratorVendor::Hygon, "Hygon K100_AI");
        let h100 = key(AcceleratorVendor::Nvidia, "NVIDIA H100 80GB HBM3");
        assert_eq!(ascend, "huawei npu ascend 910b3");
        assert!(model_matches(&ascend, "910b"), "a variant of the family");
        assert!(model_matches(&ascend, "910b3"));
        assert!(!model_matches(&ascend, "910"), "a number is not a stem");
        assert!(model_matches(&hygon, "k100"));
        assert!(!model_matches(&hygon, "k10"));
        assert!(model_matches(&h100, "h100"));
        assert!(model_matches(&h100, "h100 80gb"));
        assert!(!model_matches(
            &key(AcceleratorVendor::Nvidia, "NVIDIA RTX A1000"),
            "a100"
        ));
        assert!(!model_matches(&h100, "h800"));

        assert!(vendor_matches(&ascend, "huawei"));
        assert!(vendor_matches(&ascend, "ascend"));
        assert!(vendor_matches(&ascend, "昇腾"));
        assert!(!vendor_matches(&ascend, "nvidia"));
        assert!(vendor_matches(&hygon, "海光"));
        assert!(vendor_matches(
            &key(AcceleratorVendor::Nvidia, "Tesla V100-SXM2-32GB"),
            "nvidia"
        ));
        assert!(kind_matches(&ascend, AcceleratorKind::Npu));
        assert!(kind_matches(&hygon, AcceleratorKind::Dcu));
        assert!(!kind_matches(&h100, AcceleratorKind::Npu));
        assert_eq!(kind_named("hcu"), Some(AcceleratorKind::Dcu));
    }
}
