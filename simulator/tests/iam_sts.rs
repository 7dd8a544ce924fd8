//! IAM and STS, driven by the real aws-sdk-iam and aws-sdk-sts clients.

mod common;

use aws_sdk_iam::error::ProvideErrorMetadata;
use aws_sdk_iam::types::Tag;
use common::*;

fn decode(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn role_lifecycle() {
    let sim = start().await;
    let iam = iam(&sim).await;
    let created = iam
        .create_role()
        .role_name("relayform-us-east-1-orders")
        .path("/relayform/")
        .assume_role_policy_document(TRUST)
        .description("forwards relayed events")
        .tags(
            Tag::builder()
                .key("app")
                .value("relayform")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let role = created.role().unwrap();
    assert_eq!(
        role.arn(),
        "arn:aws:iam::000000000000:role/relayform/relayform-us-east-1-orders"
    );
    assert!(role.role_id().starts_with("AROA") && role.role_id().len() == 21);
    // Policy documents come back percent-encoded, as from AWS.
    let got = iam
        .get_role()
        .role_name("RELAYFORM-US-EAST-1-ORDERS")
        .send()
        .await
        .unwrap();
    let doc = got.role().unwrap().assume_role_policy_document().unwrap();
    assert!(doc.starts_with("%7B%22Version%22"), "{doc}");
    assert_eq!(decode(doc), TRUST);
    assert_eq!(got.role().unwrap().tags().len(), 1);

    let dup = iam
        .create_role()
        .role_name("Relayform-US-East-1-Orders")
        .assume_role_policy_document(TRUST)
        .send()
        .await
        .unwrap_err();
    let dup = dup.into_service_error();
    assert!(dup.is_entity_already_exists_exception(), "{dup:?}");

    let trust2 = TRUST.replace("events.amazonaws.com", "lambda.amazonaws.com");
    iam.update_assume_role_policy()
        .role_name("relayform-us-east-1-orders")
        .policy_document(&trust2)
        .send()
        .await
        .unwrap();
    let doc = iam
        .get_role()
        .role_name("relayform-us-east-1-orders")
        .send()
        .await
        .unwrap()
        .role()
        .unwrap()
        .assume_role_policy_document()
        .unwrap()
        .to_owned();
    assert_eq!(decode(&doc), trust2);

    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"events:PutEvents","Resource":"arn:aws:events:us-east-1:000000000000:event-bus/orders"}]}"#;
    iam.put_role_policy()
        .role_name("relayform-us-east-1-orders")
        .policy_name("put-events")
        .policy_document(policy)
        .send()
        .await
        .unwrap();
    let p = iam
        .get_role_policy()
        .role_name("relayform-us-east-1-orders")
        .policy_name("put-events")
        .send()
        .await
        .unwrap();
    assert_eq!(decode(p.policy_document()), policy);
    assert_eq!(
        iam.list_role_policies()
            .role_name("relayform-us-east-1-orders")
            .send()
            .await
            .unwrap()
            .policy_names(),
        ["put-events"]
    );
    let e = iam
        .get_role_policy()
        .role_name("relayform-us-east-1-orders")
        .policy_name("nope")
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_no_such_entity_exception());

    let managed = "arn:aws:iam::aws:policy/AmazonEventBridgeFullAccess";
    iam.attach_role_policy()
        .role_name("relayform-us-east-1-orders")
        .policy_arn(managed)
        .send()
        .await
        .unwrap();
    let attached = iam
        .list_attached_role_policies()
        .role_name("relayform-us-east-1-orders")
        .send()
        .await
        .unwrap();
    assert_eq!(
        attached.attached_policies()[0].policy_name(),
        Some("AmazonEventBridgeFullAccess")
    );

    iam.tag_role()
        .role_name("relayform-us-east-1-orders")
        .tags(Tag::builder().key("env").value("test").build().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        iam.list_role_tags()
            .role_name("relayform-us-east-1-orders")
            .send()
            .await
            .unwrap()
            .tags()
            .len(),
        2
    );
    // AWS's pattern and reserved prefix: refused, and the role's tags stay as they were.
    for (k, v) in [("aws:owner", "x"), ("env", "semi;colon"), ("", "x")] {
        let e = iam
            .tag_role()
            .role_name("relayform-us-east-1-orders")
            .tags(Tag::builder().key(k).value(v).build().unwrap())
            .send()
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("ValidationError"), "{k}={v}");
    }
    iam.untag_role()
        .role_name("relayform-us-east-1-orders")
        .tag_keys("env")
        .send()
        .await
        .unwrap();
    assert_eq!(
        iam.list_role_tags()
            .role_name("relayform-us-east-1-orders")
            .send()
            .await
            .unwrap()
            .tags()
            .len(),
        1
    );

    assert_eq!(
        iam.list_roles()
            .path_prefix("/relayform/")
            .send()
            .await
            .unwrap()
            .roles()
            .len(),
        1
    );

    // Teardown in IAM's order: policies first.
    let e = iam
        .delete_role()
        .role_name("relayform-us-east-1-orders")
        .send()
        .await
        .unwrap_err();
    let e = e.into_service_error();
    assert!(e.is_delete_conflict_exception(), "{e:?}");
    iam.delete_role_policy()
        .role_name("relayform-us-east-1-orders")
        .policy_name("put-events")
        .send()
        .await
        .unwrap();
    iam.detach_role_policy()
        .role_name("relayform-us-east-1-orders")
        .policy_arn(managed)
        .send()
        .await
        .unwrap();
    let e = iam
        .detach_role_policy()
        .role_name("relayform-us-east-1-orders")
        .policy_arn(managed)
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_no_such_entity_exception());
    iam.delete_role()
        .role_name("relayform-us-east-1-orders")
        .send()
        .await
        .unwrap();
    let e = iam
        .get_role()
        .role_name("relayform-us-east-1-orders")
        .send()
        .await
        .unwrap_err();
    let e = e.into_service_error();
    assert!(e.is_no_such_entity_exception(), "{e:?}");
}

#[tokio::test]
async fn validation() {
    let sim = start().await;
    let iam = iam(&sim).await;
    let e = iam
        .create_role()
        .role_name("bad name!")
        .assume_role_policy_document(TRUST)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("ValidationError"));
    let e = iam
        .create_role()
        .role_name("r")
        .assume_role_policy_document("not json")
        .send()
        .await
        .unwrap_err();
    let e = e.into_service_error();
    assert!(e.is_malformed_policy_document_exception(), "{e:?}");
    let e = iam
        .put_role_policy()
        .role_name("ghost")
        .policy_name("p")
        .policy_document(TRUST)
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_no_such_entity_exception());
    let e = iam
        .attach_role_policy()
        .role_name("ghost")
        .policy_arn("not-an-arn")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidInput"));
}

#[tokio::test]
async fn sts_identity_and_assume_role() {
    let sim = start().await;
    let conf = sdk_config(
        &sim,
        relayform_simulator::config::DEMO_ACCESS_KEY_ID,
        "us-east-1",
        1,
    )
    .await;
    let sts = aws_sdk_sts::Client::new(&conf);
    let me = sts.get_caller_identity().send().await.unwrap();
    assert_eq!(me.account(), Some("000000000000"));
    iam(&sim)
        .await
        .create_role()
        .role_name("deployer")
        .assume_role_policy_document(TRUST)
        .send()
        .await
        .unwrap();
    let assumed = sts
        .assume_role()
        .role_arn("arn:aws:iam::000000000000:role/deployer")
        .role_session_name("relayform")
        .send()
        .await
        .unwrap();
    let creds = assumed.credentials().unwrap();
    assert!(creds.access_key_id().starts_with("ASIA"));
    assert_eq!(
        assumed.assumed_role_user().unwrap().arn(),
        "arn:aws:sts::000000000000:assumed-role/deployer/relayform"
    );
    // The temporary key belongs to the role's account.
    let sts2 =
        aws_sdk_sts::Client::new(&sdk_config(&sim, creds.access_key_id(), "us-east-1", 1).await);
    assert_eq!(
        sts2.get_caller_identity().send().await.unwrap().account(),
        Some("000000000000")
    );
    let e = sts
        .assume_role()
        .role_arn("arn:aws:iam::000000000000:role/ghost")
        .role_session_name("x")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        aws_sdk_sts::error::ProvideErrorMetadata::code(&e),
        Some("AccessDenied")
    );
}
