//! The README's table of error codes and the `Code` enum say the same:
//! every code in one is in the other, with the same exit code and meaning.

use std::collections::BTreeMap;

use rollguard::error::Code;

/// The rows of the README's "Error codes" table: code → (exit, meaning).
fn readme_codes() -> BTreeMap<String, (u8, String)> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md is readable");
    let section = readme
        .split("\n## Error codes\n")
        .nth(1)
        .expect("the README has an Error codes section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let mut rows = BTreeMap::new();
    for line in section.lines().filter(|l| l.starts_with("| `E_")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        assert_eq!(cells.len(), 3, "a row has code, exit and meaning: {line}");
        let code = cells[0].trim_matches('`').to_string();
        let exit: u8 = cells[1]
            .parse()
            .unwrap_or_else(|_| panic!("exit is a number: {line}"));
        assert!(
            rows.insert(code.clone(), (exit, cells[2].to_string()))
                .is_none(),
            "{code} is listed twice"
        );
    }
    rows
}

#[test]
fn every_code_is_documented_and_every_documented_code_exists() {
    let readme = readme_codes();
    for code in Code::ALL {
        let Some((exit, meaning)) = readme.get(code.as_str()) else {
            panic!("{code} is in the enum but not in the README's table");
        };
        assert_eq!(*exit, code.exit_code(), "exit code of {code}");
        assert_eq!(meaning, code.meaning(), "meaning of {code}");
    }
    for name in readme.keys() {
        assert!(
            Code::parse(name).is_some(),
            "{name} is in the README's table but not in the enum"
        );
    }
}

#[test]
fn no_code_is_written_as_a_string_outside_the_enum() {
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
    let mut offenders = Vec::new();
    let mut stack = vec![std::path::PathBuf::from(src)];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("src is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.ends_with("error.rs") && path.parent().is_some_and(|p| p.ends_with("src")) {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            for (n, line) in text.lines().enumerate() {
                let code_part = line.split("//").next().unwrap_or("");
                if code_part.contains("\"E_") {
                    offenders.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "codes belong in rollguard::error::Code:\n{}",
        offenders.join("\n")
    );
}
