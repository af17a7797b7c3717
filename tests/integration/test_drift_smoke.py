from devtools.seed import add_capture, make_tenant
from tests.integration.drift_support import call_http, score_body


def test_platform_call_end_to_end(service_env, admin_db, llm_server):
    tenant = make_tenant(admin_db, "pro")
    add_capture(admin_db, tenant.workspace_id, "get", "/users/{id}")
    status, body = call_http(score_body(tenant, [("GET", "/users/{id}")]))
    assert status == 200, body
    assert body["provider"] == "platform"
    assert [f["endpoint"] for f in body["findings"]] == ["GET /users/{id}"]
