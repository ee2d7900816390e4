"""The approver's work in a real browser (Debian's Chromium, Playwright), on a phone and at a
desk: the bell tells of a waiting order, each member's share beside what they have left, a
rejection with its reason, an approval, after which the buyer can pay. Screenshots of the
approver's page at both sizes under tests/screenshots/."""

from __future__ import annotations

import re

import pytest

from tests.browsing import server  # noqa: F401  (the fixture)
from tests.browsing import DESK, PHONE, browser, expect, fits_the_phone, log_in, shoot, tab
from tests.world import build_world

pytestmark = pytest.mark.slow_suite


@pytest.fixture
async def waiting_world(make_user, admin):
    """Two orders of the branch above its rule (150 yuan), waiting for its approver."""
    w = await build_world(make_user, admin)
    assert (await admin.put(f"/api/admin/unions/{w.branch}/approval", json={"required_above_fen": 15000})).status_code == 200
    w.approver = await make_user("approver", union_id=w.branch)
    w.waiting = []
    for key, members in (("w-1", w.members[:2]), ("w-2", w.members[2:5])):
        r = await w.buyer.post(
            "/api/orders",
            json={"lines": [{"product_id": w.products["tea"], "quantity": len(members)}], "members": members},
            headers={"Idempotency-Key": key},
        )
        assert r.status_code == 201 and r.json()["status"] == "pending_approval", r.text
        w.waiting.append(r.json())
    return w


def test_the_approver_decides_on_a_phone(server, waiting_world):
    w = waiting_world
    first, second = w.waiting
    with browser() as chromium:
        with tab(chromium, PHONE) as page:
            log_in(page, server, w.approver.user["username"])
            expect(page).to_have_url(re.compile(r"/approvals$"))
            expect(page.locator("#unread-count")).to_have_text("2")
            card = page.locator(f"#approval-{first['id']}")
            expect(card).to_contain_text("¥200.00")
            expect(card.locator("table.shares")).to_contain_text("职工A0")
            expect(card.locator("table.shares")).to_contain_text("¥500.00")  # 600 − this order's 100
            fits_the_phone(page)
            shoot(page, "approver_approvals_phone")
            # reject the first with a reason (typed with the keyboard, sent with Enter)
            card.get_by_placeholder("驳回原因（采购员可见）").fill("本季度预算已用完")
            card.get_by_placeholder("驳回原因（采购员可见）").press("Enter")
            expect(page).to_have_url(re.compile(r"\?ok=rejected$"))
            expect(page.locator(".notice")).to_contain_text("订单已驳回")
            expect(page.locator(f"#approval-{first['id']}")).to_have_count(0)
            # approve the second, confirming
            page.once("dialog", lambda dialog: dialog.accept())
            page.locator(f"#approval-{second['id']}").get_by_role("button", name="审批通过").click()
            expect(page).to_have_url(re.compile(r"\?ok=approved$"))
            expect(page.locator(".card.muted")).to_contain_text("没有待审批的订单")
            page.get_by_role("link", name="已驳回").click()
            expect(page.locator(f"#approval-{first['id']}")).to_contain_text("本季度预算已用完")
            fits_the_phone(page)
        with tab(chromium, DESK) as page:
            log_in(page, server, w.approver.user["username"])
            page.get_by_role("link", name="全部").click()
            expect(page.locator("article.approval")).to_have_count(2)
            shoot(page, "approver_approvals_desktop")
        with tab(chromium, PHONE) as page:  # the buyer: the approved order can be paid now
            log_in(page, server, w.buyer.user["username"])
            page.goto(f"{server}/orders/{second['id']}")
            expect(page.locator("#payment")).to_contain_text("转账附言")
            expect(page.locator("main")).to_contain_text("审批通过")
            fits_the_phone(page)

