//! Pure validation and masking of Chinese identifiers (身份证号, 统一社会信用代码).
//! No I/O, no clock: callers trim input and compare birth dates against "now" themselves.

use chrono::NaiveDate;

/// Why a 身份证号 (GB 11643-1999 18-digit resident ID) is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdProblem {
    /// Not 18 characters long (len counted in chars after trimming).
    Length { len: usize },
    /// A character other than digits in positions 1-17 or other than digit/X in position 18.
    Charset,
    /// First two digits are not a province-level code.
    Region { code: String },
    /// Digits 7-14 are not a real date (YYYYMMDD), or are before 1900-01-01.
    BirthDate { digits: String },
    /// The mod 11-2 check character is wrong.
    CheckChar { expected: char, found: char },
}

impl IdProblem {
    /// Short simplified-Chinese explanation, including how to fix it.
    pub fn message_zh(&self) -> String {
        match self {
            IdProblem::Length { len } => {
                format!("身份证号应为18位，实际为{len}位，请核对后重新填写")
            }
            IdProblem::Charset => "身份证号只能由数字组成（第18位可以是X），\
                 请检查是否混入了空格、字母或全角字符后重新填写"
                .to_string(),
            IdProblem::Region { code } => {
                format!("身份证号前两位“{code}”不是有效的省级地区码，请核对身份证号")
            }
            IdProblem::BirthDate { digits } => format!(
                "身份证号第7-14位“{digits}”不是有效的出生日期\
                 （应为1900年1月1日至2099年12月31日之间的真实日期），请核对身份证号"
            ),
            IdProblem::CheckChar { expected, found } => format!(
                "身份证号校验位错误（按前17位计算应为{expected}，实际为{found}），\
                 可能有数字录入错误，请逐位核对身份证号"
            ),
        }
    }
}

/// Weights for the GB 11643-1999 mod 11-2 check.
const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check characters indexed by (weighted sum mod 11).
const ID_CHECK_CHARS: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
/// Province-level region codes (first two digits).
const PROVINCE_CODES: [u8; 34] = [
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52,
    53, 54, 61, 62, 63, 64, 65, 71, 81, 82,
];

/// Check an 18-character resident ID. Input is trimmed by the caller; a lowercase 'x' in position 18 is accepted as 'X'.
pub fn check_resident_id(id: &str) -> Result<(), IdProblem> {
    let len = id.chars().count();
    if len != 18 {
        return Err(IdProblem::Length { len });
    }
    // A character outside ASCII is never a digit or X.
    if !id.is_ascii() {
        return Err(IdProblem::Charset);
    }
    let bytes = id.as_bytes();
    let found = char::from(bytes[17]).to_ascii_uppercase();
    if !bytes[..17].iter().all(u8::is_ascii_digit) || !(found.is_ascii_digit() || found == 'X') {
        return Err(IdProblem::Charset);
    }
    // All 18 chars are ASCII from here on, so byte slicing is safe.
    let region = &id[0..2];
    let region_num: u8 = region.parse().expect("two ASCII digits");
    if !PROVINCE_CODES.contains(&region_num) {
        return Err(IdProblem::Region {
            code: region.to_string(),
        });
    }
    let birth = &id[6..14];
    if !is_valid_birth_date(birth) {
        return Err(IdProblem::BirthDate {
            digits: birth.to_string(),
        });
    }
    let expected = resident_id_check_char(&id[..17]).expect("17 ASCII digits");
    if expected != found {
        return Err(IdProblem::CheckChar { expected, found });
    }
    Ok(())
}

/// `digits` is 8 ASCII digits; true if it is a real date in 1900-01-01..=2099-12-31.
fn is_valid_birth_date(digits: &str) -> bool {
    let year: i32 = digits[0..4].parse().unwrap_or(0);
    let month: u32 = digits[4..6].parse().unwrap_or(0);
    let day: u32 = digits[6..8].parse().unwrap_or(0);
    (1900..=2099).contains(&year) && NaiveDate::from_ymd_opt(year, month, day).is_some()
}

/// An 18-character 身份证号 (17 digits, then a digit or X) packed into a number, for keys that
/// are neither copied nor hashed as text; None for any other text (a lower-case x included:
/// IDs are compared upper-cased).
pub fn pack_resident_id(id: &str) -> Option<u64> {
    let b = id.as_bytes();
    if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let last = match b[17] {
        c @ b'0'..=b'9' => u64::from(c - b'0'),
        b'X' => 10,
        _ => return None,
    };
    let digits = b[..17]
        .iter()
        .fold(0u64, |v, c| v * 10 + u64::from(c - b'0'));
    Some(digits * 11 + last)
}

/// [`pack_resident_id`] undone.
pub fn unpack_resident_id(v: u64) -> String {
    let last = v % 11;
    let digits = v / 11;
    let check = if last == 10 {
        'X'
    } else {
        char::from(b'0' + last as u8)
    };
    format!("{digits:017}{check}")
}

/// The check character for the first 17 digits (None if not 17 ASCII digits). Weights 7,9,10,5,8,4,2,1,6,3,7,9,10,5,8,4,2; sum mod 11 indexes "10X98765432".
pub fn resident_id_check_char(first17: &str) -> Option<char> {
    let bytes = first17.as_bytes();
    if bytes.len() != 17 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = bytes
        .iter()
        .zip(ID_WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    Some(ID_CHECK_CHARS[(sum % 11) as usize])
}

/// Why a 统一社会信用代码 (GB 32100-2015, 18 chars) is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreditCodeProblem {
    /// Not 18 characters long (len counted in chars).
    Length { len: usize },
    /// The first character (as typed) that is not in the code's character set.
    Charset { ch: char },
    /// The mod 31 check character is wrong (`found` is upper-cased).
    CheckChar { expected: char, found: char },
}

impl CreditCodeProblem {
    /// Short simplified-Chinese explanation, including how to fix it.
    pub fn message_zh(&self) -> String {
        match self {
            CreditCodeProblem::Length { len } => {
                format!("统一社会信用代码应为18位，实际为{len}位，请核对后重新填写")
            }
            CreditCodeProblem::Charset { ch } => format!(
                "统一社会信用代码含有无效字符{}（只允许数字和除I、O、Z、S、V以外的大写字母），\
                 请核对后重新填写",
                describe_char(*ch)
            ),
            CreditCodeProblem::CheckChar { expected, found } => format!(
                "统一社会信用代码校验位错误（按前17位计算应为{expected}，实际为{found}），\
                 可能有字符录入错误，请逐位核对"
            ),
        }
    }
}

/// Quote a character for a message; make invisible characters visible.
fn describe_char(ch: char) -> String {
    if ch.is_whitespace() || ch.is_control() {
        format!("（空白或控制字符 U+{:04X}）", u32::from(ch))
    } else {
        format!("“{ch}”")
    }
}

/// The 31-character alphabet of GB 32100-2015 (no I, O, Z, S, V); index = value.
const CREDIT_CHARSET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
/// Weights 3^i mod 31 for positions 1-17.
const CREDIT_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// Value of a credit-code character (lowercase accepted), or None if outside the charset.
fn credit_value(ch: char) -> Option<u32> {
    if !ch.is_ascii() {
        return None;
    }
    let up = ch.to_ascii_uppercase() as u8;
    CREDIT_CHARSET
        .iter()
        .position(|&c| c == up)
        .map(|p| p as u32)
}

/// Check a credit code (caller trims; lowercase letters accepted as uppercase). Character set "0123456789ABCDEFGHJKLMNPQRTUWXY" (31 chars, no I O Z S V); weights 1,3,9,27,19,26,16,17,20,29,25,13,8,24,10,30,28; check value = 31 - (sum mod 31), 31 maps to 0; the check char is the charset char of that value.
pub fn check_credit_code(code: &str) -> Result<(), CreditCodeProblem> {
    let len = code.chars().count();
    if len != 18 {
        return Err(CreditCodeProblem::Length { len });
    }
    if let Some(ch) = code.chars().find(|&c| credit_value(c).is_none()) {
        return Err(CreditCodeProblem::Charset { ch });
    }
    // All 18 are ASCII characters of the code's set from here on: byte slicing is safe.
    let expected = credit_code_check_char(&code[..17]).expect("17 charset chars");
    let found = char::from(code.as_bytes()[17]).to_ascii_uppercase();
    if expected != found {
        return Err(CreditCodeProblem::CheckChar { expected, found });
    }
    Ok(())
}

/// The check character for the first 17 characters of a credit code
/// (None unless exactly 17 charset characters; lowercase accepted).
pub fn credit_code_check_char(first17: &str) -> Option<char> {
    let mut sum = 0u32;
    let mut count = 0usize;
    for ch in first17.chars() {
        if count == 17 {
            return None;
        }
        sum += credit_value(ch)? * CREDIT_WEIGHTS[count];
        count += 1;
    }
    if count != 17 {
        return None;
    }
    let value = (31 - sum % 31) % 31;
    Some(CREDIT_CHARSET[value as usize] as char)
}

/// Mask a resident ID for display: keep the first 6 and last 4 characters, replace the middle with '*': "330108199001011234" -> "330108********1234". Strings shorter than 10 chars: replace all but the last 2 chars with '*'. Works on chars, not bytes.
pub fn mask_id(id: &str) -> String {
    // Once per roster row of every workbook: one pass to count, one allocation.
    let n = id.chars().count();
    let (keep_head, keep_tail) = if n >= 10 { (6, 4) } else { (0, n.min(2)) };
    let mut out = String::with_capacity(id.len());
    for (i, c) in id.chars().enumerate() {
        out.push(if i < keep_head || i >= n - keep_tail {
            c
        } else {
            '*'
        });
    }
    out
}

/// Mask every 身份证号-like run in free text: a run of 15–18 digits, or of 15–18 characters
/// of digits with a trailing X — the runs the master masks, and the digit runs of an ID that
/// lost or gained a digit (a 17-digit ID is wrong, and still a person's ID). Each run is
/// masked as `ids::mask_id` masks one ID.
pub fn mask_ids_in(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() {
            let mut j = i;
            while j < chars.len() && chars[j].is_ascii_digit() {
                j += 1;
            }
            let digits = j - i;
            if j < chars.len() && matches!(chars[j], 'X' | 'x') {
                j += 1;
            }
            let run: String = chars[i..j].iter().collect();
            if (15..=18).contains(&digits) || (15..=18).contains(&(j - i)) {
                out.push_str(&mask_id(&run));
            } else {
                out.push_str(&run);
            }
            i = j;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Build a full ID from 17 digits by appending the computed check char.
    fn with_check(first17: &str) -> String {
        format!("{first17}{}", resident_id_check_char(first17).unwrap())
    }

    fn with_credit_check(first17: &str) -> String {
        format!("{first17}{}", credit_code_check_char(first17).unwrap())
    }

    // ---- resident ID ----

    #[test]
    fn well_known_example_is_valid() {
        // Hand check of 11010519491231002:
        // digits  1 1  0 1 0 5 1 9 4 9 1 2  3 1 0 0 2
        // weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2
        // products 7+9+0+5+0+20+2+9+24+27+7+18+30+5+0+0+4 = 167
        // 167 mod 11 = 2 -> "10X98765432"[2] = 'X'.
        assert_eq!(resident_id_check_char("11010519491231002"), Some('X'));
        assert_eq!(check_resident_id("11010519491231002X"), Ok(()));
        assert_eq!(with_check("11010519491231002"), "11010519491231002X");
    }

    #[test]
    fn lowercase_x_accepted() {
        assert_eq!(check_resident_id("11010519491231002x"), Ok(()));
    }

    #[test]
    fn constructed_ids_are_valid() {
        for first17 in [
            "33010819900101123",
            "44030620000229001",
            "82000019000101000",
            "71000020991231999",
            "65010119850615321",
        ] {
            let id = with_check(first17);
            assert_eq!(check_resident_id(&id), Ok(()), "{id}");
        }
    }

    #[test]
    fn check_char_none_for_bad_input() {
        assert_eq!(resident_id_check_char("1101051949123100"), None);
        assert_eq!(resident_id_check_char("110105194912310021"), None);
        assert_eq!(resident_id_check_char("1101051949123100X"), None);
        assert_eq!(
            resident_id_check_char("１１０１０５１９４９１２３１００２"),
            None
        );
    }

    #[test]
    fn length_problem() {
        assert_eq!(
            check_resident_id("11010519491231002"),
            Err(IdProblem::Length { len: 17 })
        );
        assert_eq!(check_resident_id(""), Err(IdProblem::Length { len: 0 }));
        assert_eq!(
            check_resident_id("11010519491231002X1"),
            Err(IdProblem::Length { len: 19 })
        );
        // Counted in chars, not bytes: 18 full-width digits is a charset problem.
        assert_eq!(
            check_resident_id("１１０１０５１９４９１２３１００２Ｘ"),
            Err(IdProblem::Charset)
        );
    }

    #[test]
    fn charset_problem() {
        assert_eq!(
            check_resident_id("1101051949123100X2"),
            Err(IdProblem::Charset)
        );
        assert_eq!(
            check_resident_id("11010519491231002Y"),
            Err(IdProblem::Charset)
        );
        assert_eq!(
            check_resident_id("110105 9491231002X"),
            Err(IdProblem::Charset)
        );
        // Charset beats region (00 is not a region).
        assert_eq!(
            check_resident_id("00010519491231002Y"),
            Err(IdProblem::Charset)
        );
    }

    #[test]
    fn region_problem() {
        for region in [
            "00", "10", "16", "20", "24", "30", "38", "40", "47", "55", "60", "66", "70", "72",
            "80", "83", "91", "99",
        ] {
            let id = with_check(&format!("{region}010519491231002"));
            assert_eq!(
                check_resident_id(&id),
                Err(IdProblem::Region {
                    code: region.to_string()
                }),
                "{id}"
            );
        }
        // Region beats birth date.
        let id = with_check("99010519491331002");
        assert!(matches!(
            check_resident_id(&id),
            Err(IdProblem::Region { .. })
        ));
    }

    #[test]
    fn birth_date_problem() {
        for date in [
            "19491301", "19490230", "18991231", "21000101", "19490000", "00000000",
        ] {
            let id = with_check(&format!("110105{date}002"));
            assert_eq!(
                check_resident_id(&id),
                Err(IdProblem::BirthDate {
                    digits: date.to_string()
                }),
                "{id}"
            );
        }
        // Birth date beats check char.
        assert_eq!(
            check_resident_id("11010519491331002X"),
            Err(IdProblem::BirthDate {
                digits: "19491331".to_string()
            })
        );
    }

    #[test]
    fn leap_days() {
        assert_eq!(check_resident_id(&with_check("11010520000229002")), Ok(()));
        assert_eq!(check_resident_id(&with_check("11010519960229002")), Ok(()));
        assert_eq!(
            check_resident_id(&with_check("11010519000229002")),
            Err(IdProblem::BirthDate {
                digits: "19000229".to_string()
            })
        );
        assert_eq!(
            check_resident_id(&with_check("11010519990229002")),
            Err(IdProblem::BirthDate {
                digits: "19990229".to_string()
            })
        );
    }

    #[test]
    fn check_char_problem() {
        assert_eq!(
            check_resident_id("110105194912310021"),
            Err(IdProblem::CheckChar {
                expected: 'X',
                found: '1'
            })
        );
        let id = with_check("33010819900101123");
        let wrong = if id.ends_with('0') { '1' } else { '0' };
        let bad = format!("{}{wrong}", &id[..17]);
        assert_eq!(
            check_resident_id(&bad),
            Err(IdProblem::CheckChar {
                expected: id.chars().last().unwrap(),
                found: wrong
            })
        );
    }

    #[test]
    fn id_messages_are_chinese_and_specific() {
        assert_eq!(
            IdProblem::Length { len: 17 }.message_zh(),
            "身份证号应为18位，实际为17位，请核对后重新填写"
        );
        assert!(IdProblem::Charset.message_zh().contains("数字"));
        assert!(
            IdProblem::Region { code: "99".into() }
                .message_zh()
                .contains("99")
        );
        assert!(
            IdProblem::BirthDate {
                digits: "19491331".into()
            }
            .message_zh()
            .contains("19491331")
        );
        let m = IdProblem::CheckChar {
            expected: 'X',
            found: '1',
        }
        .message_zh();
        assert!(m.contains("校验位错误") && m.contains("应为X"), "{m}");
    }

    // ---- credit code ----

    #[test]
    fn published_credit_code_is_valid() {
        // Hand check of 91350100M000100Y43 (check char '3'):
        // chars   9 1 3  5  0  1  0  0  M  0  0  0 1  0  0  Y  4
        // values  9 1 3  5  0  1  0  0 21  0  0  0 1  0  0 30  4
        // weights 1 3 9 27 19 26 16 17 20 29 25 13 8 24 10 30 28
        // products 9+3+27+135+0+26+0+0+420+0+0+0+8+0+0+900+112 = 1640
        // 1640 mod 31 = 1640 - 52*31 = 28; 31 - 28 = 3 -> '3'.
        assert_eq!(credit_code_check_char("91350100M000100Y4"), Some('3'));
        assert_eq!(check_credit_code("91350100M000100Y43"), Ok(()));
        assert_eq!(check_credit_code("91350100m000100y43"), Ok(()));
    }

    #[test]
    fn constructed_credit_codes_are_valid() {
        for first17 in [
            "91330106MA2CFQXM1",
            "12100000400000000",
            "Y0000000000000000",
            "00000000000000000",
        ] {
            let code = with_credit_check(first17);
            assert_eq!(check_credit_code(&code), Ok(()), "{code}");
        }
        // All zeros: sum 0 -> 31 - 0 = 31 maps to 0.
        assert_eq!(credit_code_check_char("00000000000000000"), Some('0'));
    }

    #[test]
    fn credit_check_char_none_for_bad_input() {
        assert_eq!(credit_code_check_char("91350100M000100Y"), None);
        assert_eq!(credit_code_check_char("91350100M000100Y43"), None);
        assert_eq!(credit_code_check_char("91350100I000100Y4"), None);
        assert_eq!(credit_code_check_char("91350100Ｍ000100Y4"), None);
    }

    #[test]
    fn credit_problems() {
        assert_eq!(
            check_credit_code("91350100M000100Y4"),
            Err(CreditCodeProblem::Length { len: 17 })
        );
        for bad in ['I', 'O', 'Z', 'S', 'V', 'i', 'o', ' ', '-', 'Ｍ'] {
            let code = format!("91350100{bad}000100Y43");
            assert_eq!(
                check_credit_code(&code),
                Err(CreditCodeProblem::Charset { ch: bad }),
                "{code}"
            );
        }
        // Invalid char in the check position is a charset problem too.
        assert_eq!(
            check_credit_code("91350100M000100Y4O"),
            Err(CreditCodeProblem::Charset { ch: 'O' })
        );
        assert_eq!(
            check_credit_code("91350100M000100Y4a"),
            Err(CreditCodeProblem::CheckChar {
                expected: '3',
                found: 'A'
            })
        );
    }

    #[test]
    fn credit_messages() {
        assert_eq!(
            CreditCodeProblem::Length { len: 17 }.message_zh(),
            "统一社会信用代码应为18位，实际为17位，请核对后重新填写"
        );
        assert!(
            CreditCodeProblem::Charset { ch: 'O' }
                .message_zh()
                .contains("“O”")
        );
        assert!(
            CreditCodeProblem::Charset { ch: ' ' }
                .message_zh()
                .contains("U+0020")
        );
        assert!(
            CreditCodeProblem::CheckChar {
                expected: '3',
                found: 'A'
            }
            .message_zh()
            .contains("应为3")
        );
    }

    // ---- mask_id ----

    #[test]
    fn mask_examples() {
        assert_eq!(mask_id("330108199001011234"), "330108********1234");
        assert_eq!(mask_id("11010519491231002X"), "110105********002X");
        assert_eq!(mask_id("1234567890"), "1234567890");
        assert_eq!(mask_id("12345678901"), "123456*8901");
        assert_eq!(mask_id("123456789"), "*******89");
        assert_eq!(mask_id("123"), "*23");
        assert_eq!(mask_id("12"), "12");
        assert_eq!(mask_id("1"), "1");
        assert_eq!(mask_id(""), "");
        // Chars, not bytes.
        assert_eq!(mask_id("张三李四王五"), "****王五");
        assert_eq!(
            mask_id("一二三四五六七八九十甲乙"),
            "一二三四五六**九十甲乙"
        );
    }

    // ---- properties ----

    /// 17-digit prefix with a valid province code and a birth date in range.
    fn valid_id_prefix() -> impl Strategy<Value = String> {
        let first = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap();
        let last = NaiveDate::from_ymd_opt(2099, 12, 31).unwrap();
        let span = (last - first).num_days();
        (
            prop::sample::select(PROVINCE_CODES.to_vec()),
            0u32..10_000,
            0..=span,
            0u32..1000,
        )
            .prop_map(move |(region, area, offset, seq)| {
                let date = first + chrono::Duration::days(offset);
                format!("{region:02}{area:04}{}{seq:03}", date.format("%Y%m%d"))
            })
    }

    fn credit_prefix() -> impl Strategy<Value = String> {
        prop::collection::vec(0usize..31, 17)
            .prop_map(|v| v.into_iter().map(|i| CREDIT_CHARSET[i] as char).collect())
    }

    proptest! {
        #[test]
        fn prop_computed_id_check_char_passes(prefix in valid_id_prefix()) {
            let id = with_check(&prefix);
            prop_assert_eq!(check_resident_id(&id), Ok(()));
            prop_assert_eq!(check_resident_id(&id.to_lowercase()), Ok(()));
        }

        #[test]
        fn prop_single_digit_change_fails(
            prefix in valid_id_prefix(),
            pos in 0usize..18,
            shift in 1u8..10,
        ) {
            let id = with_check(&prefix);
            let mut bytes = id.clone().into_bytes();
            let old = bytes[pos];
            let new = if old.is_ascii_digit() {
                b'0' + (old - b'0' + shift) % 10
            } else {
                b'0' + shift % 10
            };
            prop_assert_ne!(old, new);
            bytes[pos] = new;
            let changed = String::from_utf8(bytes).unwrap();
            prop_assert!(check_resident_id(&changed).is_err(), "{} -> {}", id, changed);
        }

        #[test]
        fn prop_computed_credit_check_char_passes(prefix in credit_prefix()) {
            let code = with_credit_check(&prefix);
            prop_assert_eq!(check_credit_code(&code), Ok(()));
            prop_assert_eq!(check_credit_code(&code.to_lowercase()), Ok(()));
        }

        #[test]
        fn prop_single_credit_char_change_fails(
            prefix in credit_prefix(),
            pos in 0usize..18,
            shift in 1u32..31,
        ) {
            let code = with_credit_check(&prefix);
            let mut bytes = code.clone().into_bytes();
            let old = credit_value(bytes[pos] as char).unwrap();
            bytes[pos] = CREDIT_CHARSET[((old + shift) % 31) as usize];
            let changed = String::from_utf8(bytes).unwrap();
            prop_assert!(check_credit_code(&changed).is_err(), "{} -> {}", code, changed);
        }

        #[test]
        fn prop_mask_preserves_char_count(s in "\\PC{0,30}") {
            let masked = mask_id(&s);
            prop_assert_eq!(masked.chars().count(), s.chars().count());
        }
    }
}
