// What each role is shown: the navigation's menus and the overview's cards.

export const seesAlerts = (role) => role !== "user" && role !== "line_provider";
export const listsHosts = (role) => role !== "user" && role !== "line_provider";
export const staffRole = (r) => ["admin", "operator", "viewer"].includes(r);
export const orgRole = (r) => r !== "user" && r !== "line_provider";
