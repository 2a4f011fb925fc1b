//! gRPC server reflection on a service port, in both protocol versions
//! (grpcurl and most tools ask v1; older tools only v1alpha).

use std::time::Duration;

use tokio_stream::StreamExt;
use tonic_reflection::pb::{v1, v1alpha};

use crate::helpers::{Backend, spawn_app};

const HOST: &str = "reflection.test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_list_themselves_over_reflection_v1_and_v1alpha() {
    let app = spawn_app(Backend::Embedded).await.unwrap();
    let url = format!("http://{}", app.quest_addr.unwrap());
    let channel = vdm_kit::grpc::channel(&url, Duration::from_secs(5)).unwrap();

    let request = v1::ServerReflectionRequest {
        host: HOST.into(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut answers = v1::server_reflection_client::ServerReflectionClient::new(channel.clone())
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let Some(Ok(answer)) = answers.next().await else {
        panic!("no v1 answer")
    };
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) = answer.message_response
    else {
        panic!("not a service list")
    };
    let v1_names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();

    let request = v1alpha::ServerReflectionRequest {
        host: HOST.into(),
        message_request: Some(v1alpha::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut answers = v1alpha::server_reflection_client::ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let Some(Ok(answer)) = answers.next().await else {
        panic!("no v1alpha answer")
    };
    let Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        answer.message_response
    else {
        panic!("not a service list")
    };
    let v1alpha_names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();

    for names in [&v1_names, &v1alpha_names] {
        assert!(names.iter().any(|n| n == "vdm.quest.v1.QuestService"), "{names:?}");
        assert!(names.iter().any(|n| n == "grpc.health.v1.Health"), "{names:?}");
    }
    app.finish().await;
}
