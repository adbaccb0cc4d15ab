//! `meshd translate` for a gateway whose Pod the configuration does not have: `--label`
//! stands for the node metadata labels that select its Gateways and its Service.

use std::process::Command;

#[test]
fn translate_takes_labels_for_a_router() {
    let node_id = "router~10.244.9.9~gw-1.istio-system~istio-system.svc.cluster.local";
    let run = |labels: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_meshd"));
        cmd.args(["translate", "--config-dir"])
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/testdata/traffic/gateway"
            ))
            .args(["--node-id", node_id, "--type", "listeners"]);
        for l in labels {
            cmd.args(["--label", l]);
        }
        let out = cmd.output().expect("meshd translate runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut names: Vec<String> = json["listeners"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["name"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    };
    // The labels pick the Gateway, and through the gateway's Service its ports 80 and 443
    // become listeners on the target ports 8080 and 8443.
    assert_eq!(
        run(&["istio=ingressgateway"]),
        [
            "0.0.0.0_15443",
            "0.0.0.0_31400",
            "0.0.0.0_8080",
            "0.0.0.0_8443"
        ]
    );
    // No labels: no Gateway, no listener.
    assert!(run(&[]).is_empty());
}
