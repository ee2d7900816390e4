"""The web pages (zh-CN), one module per role or area; each calls the same domain
functions as the API and renders a template (`shop/web/render.py`)."""

from shop.web.pages import (
    account,
    admin,
    after_sales,
    approvals,
    basket,
    branch,
    catalog,
    invoices,
    member_view,
    members,
    notifications,
    orders,
    reports,
    settlement,
    shipments,
    supplier,
    users,
)

ROUTES = {
    "public": [account.LoginPages, catalog.CatalogPages, member_view.MemberViewPages],
    "any": [account.HomePage, users.PasswordPages, notifications.NotificationPages, after_sales.AfterSalePages,
            approvals.ApprovalPages],
    "buyer": [basket.ShopPages, members.MemberPages, members.BudgetPages, branch.BranchPages, shipments.ReceiptPages,
              invoices.InvoiceDecisionPages, member_view.ReceiptSheetPages],
    "orders": [orders.OrderPages],
    "reader": [settlement.StatementPages],
    "seller": [settlement.SettlementPages],
    "supplier": [supplier.SupplierPages, shipments.SupplierShipmentPages],
    "admin": [admin.AdminPages, users.AdminUserPages, approvals.ApprovalRulePages],
    "auditor": [reports.ReportPages],
}
