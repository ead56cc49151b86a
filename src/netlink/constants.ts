// rtnetlink numbers from the kernel UAPI headers (linux/netlink.h, rtnetlink.h,
// if_link.h, if_addr.h, veth.h). Only what oci-netdev uses.

export const NETLINK_ROUTE = 0;
export const NETLINK_GENERIC = 16;

// nlmsghdr types and flags
export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
export const NLM_F_DUMP_INTR = 0x10;
export const NLM_F_DUMP = 0x300;
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
// flags on NLMSG_ERROR acks
export const NLM_F_CAPPED = 0x100;
export const NLM_F_ACK_TLVS = 0x200;

// socket options (SOL_NETLINK)
export const NETLINK_CAP_ACK = 10;
export const NETLINK_EXT_ACK = 11;
export const NETLINK_GET_STRICT_CHK = 12;

// extended ack attributes
export const NLMSGERR_ATTR_MSG = 1;
export const NLMSGERR_ATTR_OFFS = 2;

export const NLA_F_NESTED = 0x8000;
export const NLA_TYPE_MASK = 0x3fff;

// rtnetlink message types
export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_NEWADDR = 20;
export const RTM_DELADDR = 21;
export const RTM_GETADDR = 22;
export const RTM_NEWNSID = 88;
export const RTM_GETNSID = 90;
export const RTM_NEWLINKPROP = 108;
export const RTM_DELLINKPROP = 109;

export const AF_UNSPEC = 0;
export const AF_INET = 2;
export const AF_INET6 = 10;

// ifinfomsg flags
export const IFF_UP = 0x1;
const IFF_DEBUG = 0x4;
export const IFF_LOOPBACK = 0x8;
const IFF_NOTRAILERS = 0x20;
const IFF_NOARP = 0x80;
const IFF_PROMISC = 0x100;
const IFF_ALLMULTI = 0x200;
const IFF_MULTICAST = 0x1000;
const IFF_PORTSEL = 0x2000;
const IFF_AUTOMEDIA = 0x4000;
const IFF_DYNAMIC = 0x8000;
/**
 * The flags user space sets through RTM_NEWLINK (the kernel's __dev_change_flags keeps these from
 * the request), besides IFF_UP: promisc and allmulti as the user asked, whatever else counts them.
 */
export const IFF_SETTABLE = IFF_DEBUG | IFF_NOTRAILERS | IFF_NOARP | IFF_DYNAMIC | IFF_MULTICAST | IFF_PORTSEL
  | IFF_AUTOMEDIA | IFF_PROMISC | IFF_ALLMULTI;

// IFLA_* link attributes
export const IFLA_ADDRESS = 1;
export const IFLA_BROADCAST = 2;
export const IFLA_IFNAME = 3;
export const IFLA_MTU = 4;
export const IFLA_LINK = 5;
export const IFLA_MASTER = 10;
export const IFLA_TXQLEN = 13;
export const IFLA_LINKMODE = 17;
export const IFLA_LINKINFO = 18;
export const IFLA_IFALIAS = 20;
export const IFLA_GROUP = 27;
export const IFLA_NET_NS_FD = 28;
export const IFLA_LINK_NETNSID = 37;
export const IFLA_PROTO_DOWN = 39;
export const IFLA_GSO_MAX_SEGS = 40;
export const IFLA_GSO_MAX_SIZE = 41;
export const IFLA_XDP = 43;
/** Per address family settings of a link (nested by family); IPv6's hold IFLA_INET6_*. */
export const IFLA_AF_SPEC = 26;
/** The IPv6 interface identifier (`ip token`), an in6_addr whose low 64 bits count. */
export const IFLA_INET6_TOKEN = 7;
export const IFLA_NEW_IFINDEX = 49;
export const IFLA_MIN_MTU = 50;
export const IFLA_MAX_MTU = 51;
export const IFLA_PROP_LIST = 52;
export const IFLA_ALT_IFNAME = 53;
export const IFLA_PERM_ADDRESS = 54;
export const IFLA_PROTO_DOWN_REASON = 55;
export const IFLA_PARENT_DEV_NAME = 56;
export const IFLA_PARENT_DEV_BUS_NAME = 57;
export const IFLA_GRO_MAX_SIZE = 58;
export const IFLA_GSO_IPV4_MAX_SIZE = 63;
export const IFLA_GRO_IPV4_MAX_SIZE = 64;
/** u8, 1 when the kernel keeps the device in its namespace (Linux 6.15 and later). */
export const IFLA_NETNS_IMMUTABLE = 67;

export const IFLA_INFO_KIND = 1;
export const IFLA_INFO_DATA = 2;
export const IFLA_INFO_SLAVE_KIND = 4;

// IFLA_PROTO_DOWN_REASON_* (nested)
export const IFLA_PROTO_DOWN_REASON_MASK = 1;
export const IFLA_PROTO_DOWN_REASON_VALUE = 2;

// IFLA_XDP_* (nested) and the attach modes
export const IFLA_XDP_FD = 1;
export const IFLA_XDP_FLAGS = 3;
export const IFLA_XDP_DRV_PROG_ID = 5;
export const IFLA_XDP_SKB_PROG_ID = 6;
export const IFLA_XDP_HW_PROG_ID = 7;
export const XDP_FLAGS_SKB_MODE = 0x2;
export const XDP_FLAGS_DRV_MODE = 0x4;
export const XDP_FLAGS_HW_MODE = 0x8;

// IFLA_INFO_DATA of a macvlan (IFLA_MACVLAN_*) and of a vxlan (IFLA_VXLAN_*)
export const IFLA_MACVLAN_MODE = 1;
/** u32: how many source MACs a macvlan in mode source has. */
export const IFLA_MACVLAN_MACADDR_COUNT = 6;
export const IFLA_VXLAN_ID = 1;
/** u32: the underlay's ifindex, in the vxlan's link namespace. */
export const IFLA_VXLAN_LINK = 3;
/** be16: the UDP destination port. */
export const IFLA_VXLAN_PORT = 15;

// IFA_* address attributes
export const IFA_ADDRESS = 1;
export const IFA_LOCAL = 2;
export const IFA_LABEL = 3;
export const IFA_BROADCAST = 4;
export const IFA_CACHEINFO = 6;
export const IFA_FLAGS = 8;
export const IFA_RT_PRIORITY = 9;
export const IFA_PROTO = 11;
/** IFA_PROTO of the link-local address the kernel makes from the device's addr_gen_mode (Linux 6.3 and later). */
export const IFAPROT_KERNEL_LL = 3;

// ifa_flags
export const IFA_F_NODAD = 0x02;
export const IFA_F_OPTIMISTIC = 0x04;
export const IFA_F_DADFAILED = 0x08;
export const IFA_F_HOMEADDRESS = 0x10;
export const IFA_F_TENTATIVE = 0x40;
export const IFA_F_PERMANENT = 0x80;
export const IFA_F_MANAGETEMPADDR = 0x100;
export const IFA_F_NOPREFIXROUTE = 0x200;
export const IFA_F_MCAUTOJOIN = 0x400;
/** A link-local the kernel made by stable privacy (RFC 7217); only the kernel sets it. */
export const IFA_F_STABLE_PRIVACY = 0x800;

// scopes
export const RT_SCOPE_UNIVERSE = 0;
export const RT_SCOPE_LINK = 253;
export const RT_SCOPE_HOST = 254;

// generic netlink (linux/genetlink.h): the controller that names families
export const GENL_ID_CTRL = 0x10;
export const GENL_HDRLEN = 4;
export const CTRL_CMD_GETFAMILY = 3;
export const CTRL_ATTR_FAMILY_ID = 1;
export const CTRL_ATTR_FAMILY_NAME = 2;
