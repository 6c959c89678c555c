//! `type = "prometheus"`: a PromQL query through Prometheus' HTTP API
//! (`GET /api/v1/query`), judged by conditions on `[VALUE]`. The query's
//! placeholders (`{app}`, `{instance}`, `{host}`, `{port}`) may stand only
//! inside a string literal, where their values are escaped so that no value
//! can change the query's structure ([`crate::promql::fill`]); inside a
//! regular expression matcher (`=~`, `!~`) they are also taken literally. What came back is a
//! number, one series, or nothing ([`read_answer`]); nothing, and `NaN` (a
//! rate of nothing), is `no_data`, treated as the probe's `on_no_data`
//! says. A comparison ([`compare`]) runs the query for each instance of
//! a rollout's new side and of its old side and judges `[CANARY]` against
//! `[BASELINE]`, the means of the two. Parsing, filling and judging are
//! pure.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::Outcome;
use crate::condition::{Reading, Subject, shown};
use crate::config::{NoData, PromAuth, PrometheusProbe, Secrets};
use crate::model::ErrorKind;
use crate::printable::printable;

/// Bytes of an answer read at most.
const MAX_ANSWER: usize = 1024 * 1024;

/// Bytes of an error answer's text quoted in a message at most.
const ERROR_BODY_BYTES: usize = 200;

/// `text` cut to at most `max` bytes, at a character's edge.
fn cut(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// What a query answered.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// One number (a scalar, or a vector of one series).
    Value(f64),
    /// No series, or `NaN`.
    NoData(String),
    /// Something else: several series, a range vector, an error.
    Refused(String),
}

/// Reads the JSON of `/api/v1/query`.
pub fn read_answer(body: &Value) -> Answer {
    if body["status"] != "success" {
        let error = body["error"].as_str().unwrap_or("no error given");
        let kind = body["errorType"].as_str().unwrap_or("error");
        return Answer::Refused(format!("Prometheus said {kind}: {error}"));
    }
    let data = &body["data"];
    let result = &data["result"];
    let sample = match data["resultType"].as_str() {
        Some("scalar") => result,
        Some("vector") => match result.as_array().map(Vec::as_slice) {
            Some([]) => return Answer::NoData("no series".into()),
            Some([one]) => &one["value"],
            Some(many) => {
                return Answer::Refused(format!(
                    "{} series came back; [VALUE] reads one: aggregate them (sum, max, avg by nothing)",
                    many.len()
                ));
            }
            None => return Answer::Refused("a vector without a result list".into()),
        },
        Some("matrix") => {
            return Answer::Refused(
                "a range vector came back; query an instant vector (e.g. rate(x[1m]), not x[1m])"
                    .into(),
            );
        }
        Some(other) => return Answer::Refused(format!("a {other} came back, not a number")),
        None => return Answer::Refused("an answer without a resultType".into()),
    };
    let Some(text) = sample.get(1).and_then(Value::as_str) else {
        return Answer::Refused("a sample without a value".into());
    };
    match text.parse::<f64>() {
        Ok(v) if v.is_nan() => Answer::NoData("NaN (no samples to divide)".into()),
        Ok(v) => Answer::Value(v),
        Err(_) => Answer::Refused(format!("{:?} is not a number", printable(text))),
    }
}

/// Runs the probe once with `query` already filled in.
pub async fn run(
    client: &reqwest::Client,
    p: &PrometheusProbe,
    query: &str,
    timeout: Duration,
    secrets: &Secrets,
) -> Outcome {
    match ask(client, p, query, timeout, secrets).await {
        Ok(asked) => judge(p, asked.code, &asked.answer, asked.elapsed_ms),
        Err(failed) => failed,
    }
}

/// What one query answered, and how long it took.
#[derive(Clone, Debug, PartialEq)]
pub struct Asked {
    /// The HTTP status.
    pub code: Option<i64>,
    /// The answer.
    pub answer: Answer,
    /// Milliseconds from request to answer.
    pub elapsed_ms: f64,
}

/// Asks Prometheus `query`: its answer, or the failure of asking (no
/// answer, not JSON, too large). The text of an error answer is quoted
/// with `secrets` masked before it is cut (a proxy may echo the token).
pub async fn ask(
    client: &reqwest::Client,
    p: &PrometheusProbe,
    query: &str,
    timeout: Duration,
    secrets: &Secrets,
) -> Result<Asked, Outcome> {
    let started = Instant::now();
    let base = format!("{}/api/v1/query", p.url.trim_end_matches('/'));
    let mut url = url::Url::parse(&base)
        .map_err(|e| Outcome::fail(ErrorKind::Exec, None, format!("url: {e}")))?;
    url.query_pairs_mut()
        .append_pair("query", query)
        // Prometheus reads a plain number as seconds ("0.5"); "0.5s" it refuses.
        .append_pair("timeout", &timeout.as_secs_f64().to_string());
    let mut req = client.get(url).timeout(timeout);
    req = match &p.auth {
        PromAuth::None => req,
        PromAuth::Bearer(token) => req.bearer_auth(token),
        PromAuth::Basic { username, password } => req.basic_auth(username, Some(password)),
    };
    use super::http::{Stage, classify, no_answer};
    let answer = async {
        let mut resp = req.send().await.map_err(|e| (e, Stage::Head))?;
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| (e, Stage::Body))? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_ANSWER {
                break;
            }
        }
        Ok::<_, (reqwest::Error, Stage)>((status, body))
    };
    let (status, body) = match tokio::time::timeout(timeout, answer).await {
        Ok(Ok(a)) => a,
        Ok(Err((e, stage))) => return Err(classify(&e, timeout, stage)),
        Err(_) => return Err(no_answer(timeout)),
    };
    if body.len() > MAX_ANSWER {
        return Err(Outcome::fail(
            ErrorKind::Protocol,
            Some(i64::from(status)),
            "the answer is larger than 1 MiB: aggregate the query to one series",
        ));
    }
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let code = Some(i64::from(status));
    let json: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) if status != 200 => {
            let text = secrets.mask(&String::from_utf8_lossy(&body));
            let text = cut(&text, ERROR_BODY_BYTES);
            return Err(Outcome::fail(
                ErrorKind::Status,
                code,
                format!("HTTP {status}: {}", printable(text.trim())),
            ));
        }
        Err(_) => {
            return Err(Outcome::fail(
                ErrorKind::Protocol,
                code,
                "the answer is not JSON: is url a Prometheus server?",
            ));
        }
    };
    Ok(Asked {
        code,
        answer: read_answer(&json),
        elapsed_ms,
    })
}

/// A comparison of a rollout's two sides: its outcome and the value of
/// each side, when it had one.
#[derive(Clone, Debug, PartialEq)]
pub struct Compared {
    /// Pass or fail, as for any probe.
    pub outcome: Outcome,
    /// `[CANARY]`: the mean of the new side's values.
    pub canary: Option<f64>,
    /// `[BASELINE]`: the mean of the old side's values.
    pub baseline: Option<f64>,
}

/// Runs a comparison: the query filled for each instance of the new side
/// (`canary`) and of the old (`baseline`), all at once, judged by
/// [`judge_sides`].
pub async fn compare(
    client: &reqwest::Client,
    p: &PrometheusProbe,
    canary: &[String],
    baseline: &[String],
    timeout: Duration,
    secrets: &Secrets,
) -> Compared {
    if let Some(q) = canary.iter().find(|q| baseline.contains(q)) {
        return Compared {
            outcome: Outcome::fail(
                ErrorKind::Exec,
                None,
                format!(
                    "the query is the same for the new side and the old ({}): select each side's series by {{port}}",
                    printable(q)
                ),
            ),
            canary: None,
            baseline: None,
        };
    }
    let asks: Vec<_> = (canary.iter().chain(baseline))
        .map(|q| ask(client, p, q, timeout, secrets))
        .collect();
    let mut answers = super::join_all(asks).await;
    let old = answers.split_off(canary.len());
    judge_sides(p, &answers, &old)
}

/// The mean of one side's values, or why it has none.
fn side_value(answers: &[Result<Asked, Outcome>]) -> Result<f64, SideMissing> {
    let mut values = Vec::new();
    let mut no_data = None;
    for a in answers {
        match a {
            Err(failed) => return Err(SideMissing::Failed(failed.clone())),
            Ok(Asked {
                answer: Answer::Refused(why),
                code,
                ..
            }) => {
                return Err(SideMissing::Failed(Outcome::fail(
                    ErrorKind::Status,
                    *code,
                    printable(why).into_owned(),
                )));
            }
            Ok(Asked {
                answer: Answer::NoData(why),
                ..
            }) => no_data = Some(why.clone()),
            Ok(Asked {
                answer: Answer::Value(v),
                ..
            }) => values.push(*v),
        }
    }
    if values.is_empty() {
        return Err(SideMissing::NoData(
            no_data.unwrap_or_else(|| "no instance".into()),
        ));
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    // 12 significant digits, as shown: three 0.01s mean 0.01.
    Ok(shown(mean).parse().unwrap_or(mean))
}

/// Why a side has no value.
enum SideMissing {
    /// A query failed or was refused: the comparison fails so.
    Failed(Outcome),
    /// No instance of the side had data.
    NoData(String),
}

/// Judges a comparison from what each side's queries answered: `[CANARY]`
/// and `[BASELINE]` are the mean of each side's values (an instance with
/// no data is left out). A query that failed fails the comparison; a side
/// with no data at all is `no_data`, as `on_no_data` says. Pure.
pub fn judge_sides(
    p: &PrometheusProbe,
    canary: &[Result<Asked, Outcome>],
    baseline: &[Result<Asked, Outcome>],
) -> Compared {
    let code = (canary.iter().chain(baseline)).find_map(|a| a.as_ref().ok().and_then(|a| a.code));
    let elapsed_ms = (canary.iter().chain(baseline))
        .filter_map(|a| a.as_ref().ok().map(|a| a.elapsed_ms))
        .fold(0.0, f64::max);
    let (new, old) = (side_value(canary), side_value(baseline));
    let values = (new.as_ref().ok().copied(), old.as_ref().ok().copied());
    let outcome = match (new, old) {
        (Err(SideMissing::Failed(o)), _) | (_, Err(SideMissing::Failed(o))) => o,
        (Err(SideMissing::NoData(why)), _) => judge(
            p,
            code,
            &Answer::NoData(format!("the new side: {why}")),
            elapsed_ms,
        ),
        (_, Err(SideMissing::NoData(why))) => judge(
            p,
            code,
            &Answer::NoData(format!("the old side: {why}")),
            elapsed_ms,
        ),
        (Ok(c), Ok(b)) => {
            let reading = Reading {
                canary: Some(c),
                baseline: Some(b),
                response_time_ms: elapsed_ms,
                ..Reading::default()
            };
            match (p.conditions.iter())
                .find_map(|cond| cond.eval_on(&Subject::Metric(&reading)).err())
            {
                Some(why) => Outcome::fail(ErrorKind::Condition, code, why),
                None => Outcome::pass(code, format!("canary {} · baseline {}", shown(c), shown(b))),
            }
        }
    };
    Compared {
        outcome,
        canary: values.0,
        baseline: values.1,
    }
}

/// The outcome of one answer: its conditions for a value, `on_no_data`
/// for none.
pub fn judge(p: &PrometheusProbe, code: Option<i64>, answer: &Answer, elapsed_ms: f64) -> Outcome {
    let value = match answer {
        Answer::Value(v) => *v,
        Answer::Refused(why) => {
            return Outcome::fail(ErrorKind::Status, code, printable(why).into_owned());
        }
        Answer::NoData(why) => {
            let why = printable(why);
            return match p.on_no_data {
                NoData::Fail => Outcome::fail(ErrorKind::NoData, code, format!("no data: {why}")),
                NoData::Pass => {
                    Outcome::pass(code, format!("no data ({why}): passes, as on_no_data says"))
                }
                NoData::Skip => Outcome::fail(
                    ErrorKind::NoData,
                    code,
                    format!("no data ({why}): not counted, as on_no_data says"),
                ),
            };
        }
    };
    let reading = Reading {
        value: Some(value),
        response_time_ms: elapsed_ms,
        ..Reading::default()
    };
    for c in &p.conditions {
        if let Err(why) = c.eval_on(&Subject::Metric(&reading)) {
            return Outcome::fail(ErrorKind::Condition, code, why);
        }
    }
    Outcome::pass(code, format!("value {}", shown(value)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vector(values: &[&str]) -> Value {
        let result: Vec<Value> = values
            .iter()
            .map(|v| json!({"metric": {}, "value": [1.5, v]}))
            .collect();
        json!({"status": "success", "data": {"resultType": "vector", "result": result}})
    }

    #[test]
    fn answers_read_as_a_value_nothing_or_a_refusal() {
        assert_eq!(read_answer(&vector(&["0.25"])), Answer::Value(0.25));
        assert!(matches!(read_answer(&vector(&[])), Answer::NoData(_)));
        assert!(matches!(read_answer(&vector(&["NaN"])), Answer::NoData(_)));
        assert_eq!(
            read_answer(&vector(&["+Inf"])),
            Answer::Value(f64::INFINITY)
        );
        let Answer::Refused(why) = read_answer(&vector(&["1", "2"])) else {
            panic!()
        };
        assert!(why.contains("2 series"), "{why}");
        let scalar =
            json!({"status": "success", "data": {"resultType": "scalar", "result": [1.0, "3"]}});
        assert_eq!(read_answer(&scalar), Answer::Value(3.0));
        let matrix = json!({"status": "success", "data": {"resultType": "matrix", "result": []}});
        assert!(matches!(read_answer(&matrix), Answer::Refused(_)));
        let err =
            json!({"status": "error", "errorType": "bad_data", "error": "parse error at char 3"});
        assert_eq!(
            read_answer(&err),
            Answer::Refused("Prometheus said bad_data: parse error at char 3".into())
        );
        assert!(matches!(read_answer(&json!([1, 2])), Answer::Refused(_)));
        assert!(matches!(read_answer(&vector(&["x"])), Answer::Refused(_)));
    }

    fn probe(on_no_data: NoData, condition: &str) -> PrometheusProbe {
        PrometheusProbe {
            url: "http://127.0.0.1:9090".into(),
            query: "up".into(),
            conditions: vec![crate::condition::Condition::parse(condition).unwrap()],
            on_no_data,
            auth: PromAuth::None,
            insecure_tls: false,
        }
    }

    #[test]
    fn a_value_is_judged_by_the_conditions_and_no_data_as_configured() {
        let p = probe(NoData::Fail, "[VALUE] < 0.05");
        let ok = judge(&p, Some(200), &Answer::Value(0.01), 3.0);
        assert_eq!((ok.error, ok.message.as_str()), (None, "value 0.01"));
        let bad = judge(&p, Some(200), &Answer::Value(0.2), 3.0);
        assert_eq!(bad.error, Some(ErrorKind::Condition));
        assert_eq!(bad.message, "[VALUE] < 0.05 failed: 0.2 < 0.05");
        let none = Answer::NoData("no series".into());
        assert_eq!(
            judge(&p, Some(200), &none, 3.0).error,
            Some(ErrorKind::NoData)
        );
        let pass = judge(&probe(NoData::Pass, "[VALUE] < 1"), Some(200), &none, 3.0);
        assert_eq!(pass.error, None);
        let skip = judge(&probe(NoData::Skip, "[VALUE] < 1"), Some(200), &none, 3.0);
        assert_eq!(skip.error, Some(ErrorKind::NoData));
        assert!(skip.message.contains("not counted"), "{}", skip.message);
    }

    fn asked(answer: Answer) -> Result<Asked, Outcome> {
        Ok(Asked {
            code: Some(200),
            answer,
            elapsed_ms: 4.0,
        })
    }

    #[test]
    fn a_comparison_takes_each_sides_mean_and_shows_both_values() {
        let p = probe(NoData::Fail, "[CANARY] <= [BASELINE] * 1.2 + 0.01");
        let level = judge_sides(
            &p,
            &[asked(Answer::Value(0.01))],
            &[
                asked(Answer::Value(0.01)),
                asked(Answer::Value(0.01)),
                asked(Answer::Value(0.01)),
            ],
        );
        assert_eq!(level.outcome.error, None);
        assert_eq!(level.outcome.message, "canary 0.01 · baseline 0.01");
        // Three 0.01s mean 0.01, not 0.010000000000000002.
        assert_eq!((level.canary, level.baseline), (Some(0.01), Some(0.01)));

        // An instance without data is left out of its side's mean.
        let rising = judge_sides(
            &p,
            &[asked(Answer::Value(0.3))],
            &[
                asked(Answer::Value(0.02)),
                asked(Answer::NoData("no series".into())),
                asked(Answer::Value(0.04)),
            ],
        );
        assert_eq!(rising.outcome.error, Some(ErrorKind::Condition));
        assert_eq!(
            rising.outcome.message,
            "[CANARY] <= [BASELINE] * 1.2 + 0.01 failed: 0.3 <= 0.046 ([CANARY] = 0.3, [BASELINE] = 0.03)"
        );
        assert_eq!((rising.canary, rising.baseline), (Some(0.3), Some(0.03)));
    }

    #[test]
    fn a_side_without_data_is_no_data_and_a_refusal_fails() {
        let none = || asked(Answer::NoData("no series".into()));
        let p = probe(NoData::Fail, "[CANARY] <= [BASELINE]");
        let c = judge_sides(&p, &[none()], &[asked(Answer::Value(0.1))]);
        assert_eq!(c.outcome.error, Some(ErrorKind::NoData));
        assert!(
            c.outcome.message.contains("the new side"),
            "{}",
            c.outcome.message
        );
        assert_eq!((c.canary, c.baseline), (None, Some(0.1)));
        let c = judge_sides(&p, &[asked(Answer::Value(0.1))], &[none(), none()]);
        assert!(
            c.outcome.message.contains("the old side"),
            "{}",
            c.outcome.message
        );
        let skip = probe(NoData::Skip, "[CANARY] <= [BASELINE]");
        let c = judge_sides(&skip, &[none()], &[none()]);
        assert_eq!(c.outcome.error, Some(ErrorKind::NoData));
        assert!(
            c.outcome.message.contains("not counted"),
            "{}",
            c.outcome.message
        );
        // Prometheus refusing one query fails the comparison, saying why.
        let refused = asked(Answer::Refused("Prometheus said bad_data: x".into()));
        let c = judge_sides(&p, &[asked(Answer::Value(0.1))], &[refused]);
        assert_eq!(c.outcome.error, Some(ErrorKind::Status));
        assert_eq!(c.outcome.message, "Prometheus said bad_data: x");
        // So does a query that got no answer.
        let down = Err(Outcome::fail(
            ErrorKind::Refused,
            None,
            "connection refused",
        ));
        let c = judge_sides(&p, &[down], &[asked(Answer::Value(0.1))]);
        assert_eq!(c.outcome.error, Some(ErrorKind::Refused));
    }

    #[test]
    fn an_error_text_is_cut_at_a_characters_edge() {
        assert_eq!(cut("abc", 200), "abc");
        assert_eq!(cut("abcdef", 4), "abcd");
        // `é` is two bytes: a cut through it leaves it out.
        assert_eq!(cut("abcé", 4), "abc");
        assert_eq!(cut("", 0), "");
    }
}
