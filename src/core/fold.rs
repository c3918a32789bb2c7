//! Label folding: the one comparison used for sheet names, headers, cover labels, categories
//! and unit names (DESIGN.md §4a). Pure; person and enterprise names are never folded.

use unicode_normalization::UnicodeNormalization;

/// Fold a label for matching: Unicode NFKC (full-width → half-width), traditional → simplified
/// Chinese, all white space removed (U+3000 included), ASCII lowercased.
pub fn fold(label: &str) -> String {
    let nfkc: String = label.nfkc().filter(|c| !c.is_whitespace()).collect();
    // Only a label with a character the conversion may change is converted: the conversion's
    // tables are built at its first use (~0.3 ms), which most processes never need.
    let simplified = if nfkc.chars().any(is_traditional) {
        fast2s::convert(&nfkc)
    } else {
        nfkc
    };
    // Removing white space can strand a combining mark (NFKC turns ´ into space + U+0301):
    // normalize once more so that folding is idempotent.
    simplified
        .to_lowercase()
        .nfkc()
        .filter(|c| !c.is_whitespace())
        .collect()
}

mod traditional {
    include!(concat!(env!("OUT_DIR"), "/traditional.rs"));
}

/// Whether traditional → simplified conversion may change this character (alone or in some
/// word): the list build.rs took from the conversion itself.
fn is_traditional(c: char) -> bool {
    c >= '\u{800}' && traditional::TRADITIONAL.binary_search(&c).is_ok()
}

/// Whether two labels are the same after folding.
pub fn same(a: &str, b: &str) -> bool {
    fold(a) == fold(b)
}

/// Trim a free-text value (names, enterprises): white space at both ends, U+3000 included.
pub fn trim(value: &str) -> &str {
    value.trim_matches(|c: char| c.is_whitespace())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn traditional_labels_of_the_reference_plan_fold_to_simplified() {
        assert_eq!(fold("人員類別"), "人员类别");
        assert_eq!(fold("身份證號"), "身份证号");
        assert_eq!(fold("西興街道"), "西兴街道");
        assert_eq!(fold("培訓台賬"), fold("培训台账"));
        assert_eq!(fold("填報單位"), "填报单位");
        assert_eq!(fold("報送月份"), "报送月份");
        assert_eq!(fold("企業主要負責人"), "企业主要负责人");
        assert_eq!(fold("安全生產管理人員"), "安全生产管理人员");
        assert_eq!(fold("其他從業人員"), "其他从业人员");
        assert_eq!(fold("長河街道"), "长河街道");
        assert_eq!(fold("江北科技園"), "江北科技园");
        assert_eq!(fold("考核結果"), "考核结果");
        assert_eq!(fold("證書編號"), "证书编号");
        assert_eq!(fold("統一社會信用代碼"), "统一社会信用代码");
        assert_eq!(fold("培訓學時"), "培训学时");
        assert_eq!(fold("合格"), "合格");
        assert_eq!(fold("不合格"), "不合格");
    }

    #[test]
    fn width_and_white_space_are_ignored() {
        assert_eq!(fold("姓\u{3000}名"), "姓名");
        assert_eq!(fold(" 身份证号 \n"), "身份证号");
        assert_eq!(fold("ＡＢＣ１２３"), "abc123");
        assert!(same("人员类别（必填）", "人员类别(必填)"));
    }

    /// `fold` as it was before it skipped the conversion: always converted.
    fn fold_always_converted(label: &str) -> String {
        let nfkc: String = label.nfkc().filter(|c| !c.is_whitespace()).collect();
        let simplified = fast2s::convert(&nfkc).to_lowercase();
        simplified.nfkc().filter(|c| !c.is_whitespace()).collect()
    }

    #[test]
    fn skipping_the_conversion_changes_no_fold() {
        // Every character the conversion looks at, alone and beside a traditional one.
        for c in '\u{800}'..='\u{ffff}' {
            for label in [c.to_string(), format!("{c}體"), format!("體{c}")] {
                assert_eq!(fold(&label), fold_always_converted(&label), "{label:?}");
            }
        }
        // The words the conversion changes only in context, and a plain simplified label.
        for label in [
            "藉口",
            "憑藉",
            "看著",
            "苧麻",
            "闔家",
            "鍾書",
            "校讎",
            "讎定",
            "仇讎",
            "計畫",
            "企畫",
            "人员类别",
        ] {
            assert_eq!(fold(label), fold_always_converted(label), "{label:?}");
        }
        assert!(!"人员类别身份证号培训台账".chars().any(is_traditional));
        assert!("人員類別".chars().any(is_traditional));
    }

    proptest! {
        #[test]
        fn folding_is_as_if_always_converted(s in "\\PC{0,24}") {
            prop_assert_eq!(fold(&s), fold_always_converted(&s));
        }

        #[test]
        fn folding_is_idempotent(s in "\\PC{0,24}") {
            let once = fold(&s);
            prop_assert_eq!(fold(&once), once);
        }

        #[test]
        fn folding_never_keeps_white_space(s in "[ \u{3000}\ta-z人員類別]{0,16}") {
            prop_assert!(!fold(&s).chars().any(char::is_whitespace));
        }
    }
}
