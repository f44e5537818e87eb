//! Skills (docs/protocol.md §4.5): `skill_enable` / `skill_disable` link and unlink a skill
//! directory, `skills_updated` follows; the system prompt lists the enabled skills and the
//! model's `Skill` tool loads one.

use serde_json::json;

use crate::support::TestServer;
use crate::support::drive::{self, ask};
use crate::support::wire::start_runtime;

#[tokio::test]
async fn an_enabled_skill_is_listed_in_the_prompt_and_loaded_by_the_skill_tool() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    let source = server.data.path().join("my-skills").join("haiku");
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(
        source.join("SKILL.md"),
        "---\nname: haiku\ndescription: Write a haiku.\n---\nCount syllables with <SKILL_DIR>/count.py.",
    )
    .unwrap();
    std::fs::write(source.join("count.py"), "").unwrap();
    let link = server.data.path().join("store/skills/haiku");

    client
        .send(json!({"type": "skill_enable", "request_id": "se", "skill_path": source}))
        .await;
    let enabled = client.recv().await;
    assert_eq!(
        enabled,
        json!({"type": "skill_enable_response", "request_id": "se", "success": true, "skill_name": "haiku",
            "name": "haiku", "skill_path": source, "link_path": link})
    );
    assert_eq!(client.recv().await["type"], "skills_updated", "after the answer");

    let prompt = drive::call(
        &mut client,
        json!({"type": "conversation_recompile", "conversation_id": runtime["conversation_id"],
            "body": {"agent_id": runtime["agent_id"]}}),
    )
    .await;
    let listed = format!(
        "<available_skills>\n{}\n└── haiku/\n    └── SKILL.md (Write a haiku.)\n</available_skills>",
        server.data.path().join("store/skills").display()
    );
    assert!(prompt["result"].as_str().unwrap().ends_with(&listed), "{prompt}");

    let frames = drive::turn(
        &mut client,
        &runtime,
        r#"A haiku, please. [[tool: Skill {"skill": "haiku"}]]"#,
        1,
    )
    .await;
    let result = frames
        .iter()
        .find(|f| f["delta"]["message_type"] == "tool_return_message")
        .expect("the tool's result");
    let expected = format!(
        "Launching skill: haiku\n\n<haiku>\n# Skill Directory: {0}\n\n---\nname: haiku\ndescription: Write a haiku.\n---\nCount syllables with {0}/count.py.\n</haiku>",
        link.display()
    );
    assert_eq!(result["delta"]["tool_return"], json!(expected));

    let disabled = ask(
        &mut client,
        json!({"type": "skill_disable", "request_id": "sd", "name": "haiku"}),
    )
    .await;
    assert_eq!(
        disabled,
        json!({"type": "skill_disable_response", "request_id": "sd", "success": true, "skill_name": "haiku", "name": "haiku"})
    );
    assert!(!link.exists() && source.exists(), "the link goes, the skill stays");
    let frames = drive::turn(&mut client, &runtime, r#"Again. [[tool: Skill {"skill": "haiku"}]]"#, 2).await;
    assert!(
        serde_json::to_string(&frames)
            .unwrap()
            .contains("Skill \\\"haiku\\\" not found."),
        "{frames:?}"
    );
}

#[tokio::test]
async fn skills_that_cannot_be_enabled_or_disabled_say_why() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let empty = server.data.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let cases = [
        (
            json!({"type": "skill_enable", "request_id": "s", "skill_path": "/no/such/skill"}),
            "Path does not exist: /no/such/skill".to_owned(),
        ),
        (
            json!({"type": "skill_enable", "request_id": "s", "skill_path": empty}),
            format!("No SKILL.md found in {}", empty.display()),
        ),
        (
            json!({"type": "skill_disable", "request_id": "s", "name": "nothing"}),
            "Skill not found: nothing".to_owned(),
        ),
        (
            json!({"type": "skill_disable", "request_id": "s", "name": "../store"}),
            "Skill not found: ../store".to_owned(),
        ),
    ];
    for (frame, error) in cases {
        let answer = ask(&mut client, frame.clone()).await;
        assert_eq!(
            (&answer["success"], &answer["error"]),
            (&json!(false), &json!(error)),
            "{frame}"
        );
    }
    client.expect_silence(std::time::Duration::from_millis(50)).await;
}
