#!/usr/bin/perl
# make-test-mmdb.pl DIR — write small MaxMind DB files for stepup's tests.
#
# Needs Debian's libmaxmind-db-writer-perl (MaxMind::DB::Writer); the
# project's scripts/install-deps.sh installs it. The output is deterministic:
# a fixed build_epoch, and the writer serialises map keys in sorted order, so
# the same script writes byte-identical files on every run.
#
# Only documentation ranges (RFC 5737, RFC 3849) and documentation AS numbers
# (RFC 5398: 64496-64511) are used, so nothing here can be mistaken for a real
# address. Every file is an IPv6 tree holding IPv4 at ::/96 with
# alias_ipv6_to_ipv4 (as MaxMind's own files do), so ::ffff:192.0.2.1 finds
# 192.0.2.1's record in the file itself too.
#
# The mapping (tests and docs rely on it; change it only with them):
#
# | network            | country | city     | latitude, longitude   | radius km | time zone        | ASN   | AS organization       |
# |--------------------|---------|----------|-----------------------|-----------|------------------|-------|-----------------------|
# | 192.0.2.0/25       | FR      | Paris    | 48.8566, 2.3522       | 20        | Europe/Paris     | 64496 | Example Paris Telecom |
# | 192.0.2.128/25     | FR      | Paris    | 48.9500, 2.9000 (1)   | 500       | Europe/Paris     | 64497 | Example Mobile France |
# | 198.51.100.0/24    | AU      | Sydney   | -33.8688, 151.2093    | 20        | Australia/Sydney | 64498 | Example Sydney Net    |
# | 203.0.113.0/25     | US      | New York | 40.7128, -74.0060     | 50        | America/New_York | 64499 | Example NYC Hosting   |
# | 203.0.113.128/25   | (unmapped in every file: the "unknown address")                                                       |
# | 2001:db8::/33      | DE      | Berlin   | 52.5200, 13.4050      | 10        | Europe/Berlin    | 64500 | Example Berlin IPv6   |
# | 2001:db8:8000::/33 | (unmapped in every file: the IPv6 "unknown address")                                                  |
#
# (1) A fuzzy fix for Paris: ~41 km from the first Paris point, radius 500 km.
#     Between 192.0.2.0/25 and 192.0.2.128/25 the raw distance is ~41 km
#     (2 470 km/h over one minute), but after subtracting both radii it is 0:
#     "two fuzzy addresses in one city" never look like travel.
#
# Files written into DIR:
#
# | file             | database_type        | holds                                                         |
# |------------------|----------------------|---------------------------------------------------------------|
# | city.mmdb        | GeoLite2-City        | continent, country, registered_country, city, location        |
# | country.mmdb     | GeoLite2-Country     | continent, country, registered_country (no city, no location) |
# | asn.mmdb         | GeoLite2-ASN         | autonomous_system_number, autonomous_system_organization      |
# | asn-ipv4.mmdb    | GeoLite2-ASN         | as asn.mmdb, but an IPv4-only tree (ip_version 4)             |
# | enterprise.mmdb  | GeoIP2-Enterprise    | as city.mmdb plus traits.autonomous_system_{number,organization} |
# | anonymous.mmdb   | GeoIP2-Anonymous-IP  | is_anonymous, is_anonymous_vpn: a type stepup must refuse     |
# | city-moved.mmdb  | GeoLite2-City        | as city.mmdb, a later edition: 192.0.2.0/25 moved to DE, Berlin (2) |
#
# (2) For tests of a database replaced while the daemon runs: the same
#     addresses, one block placed elsewhere, built a month later
#     (2024-02-01), so a test can tell which file answered.
#
# Field layout follows MaxMind's GeoIP2/GeoLite2 schemas: country.iso_code,
# country.names.en, city.names.en, location.latitude / longitude /
# accuracy_radius / time_zone, and for ASN files the two top-level
# autonomous_system_* keys.
use strict;
use warnings;
use utf8;

use MaxMind::DB::Writer::Tree;

my $dir = shift @ARGV;
die "usage: $0 DIR\n" unless defined $dir && !@ARGV;
die "$0: $dir is not a directory\n" unless -d $dir;

# 2024-01-01T00:00:00Z: a fixed build time keeps the output deterministic.
my $BUILD_EPOCH = 1_704_067_200;

my %TYPES = (
    accuracy_radius                => 'uint16',
    autonomous_system_number       => 'uint32',
    autonomous_system_organization => 'utf8_string',
    city                           => 'map',
    code                           => 'utf8_string',
    continent                      => 'map',
    country                        => 'map',
    en                             => 'utf8_string',
    fr                             => 'utf8_string',
    geoname_id                     => 'uint32',
    is_anonymous                   => 'boolean',
    is_anonymous_vpn               => 'boolean',
    iso_code                       => 'utf8_string',
    latitude                       => 'double',
    location                       => 'map',
    longitude                      => 'double',
    names                          => 'map',
    registered_country             => 'map',
    time_zone                      => 'utf8_string',
    traits                         => 'map',
);

my %CONTINENT = (
    EU => { code => 'EU', geoname_id => 6255148, names => { en => 'Europe' } },
    OC => { code => 'OC', geoname_id => 6255151, names => { en => 'Oceania' } },
    NA => { code => 'NA', geoname_id => 6255149, names => { en => 'North America' } },
);

# One row per mapped network; see the table above.
my @PLACES = (
    {
        network => '192.0.2.0/25', continent => 'EU', country => 'FR', country_name => 'France',
        city => 'Paris', lat => 48.8566, lon => 2.3522, radius => 20, tz => 'Europe/Paris',
        asn => 64496, as_org => 'Example Paris Telecom',
    },
    {
        network => '192.0.2.128/25', continent => 'EU', country => 'FR', country_name => 'France',
        city => 'Paris', lat => 48.95, lon => 2.9, radius => 500, tz => 'Europe/Paris',
        asn => 64497, as_org => 'Example Mobile France',
    },
    {
        network => '198.51.100.0/24', continent => 'OC', country => 'AU', country_name => 'Australia',
        city => 'Sydney', lat => -33.8688, lon => 151.2093, radius => 20, tz => 'Australia/Sydney',
        asn => 64498, as_org => 'Example Sydney Net',
    },
    {
        network => '203.0.113.0/25', continent => 'NA', country => 'US', country_name => 'United States',
        city => 'New York', lat => 40.7128, lon => -74.0060, radius => 50, tz => 'America/New_York',
        asn => 64499, as_org => 'Example NYC Hosting',
    },
    {
        network => '2001:db8::/33', continent => 'EU', country => 'DE', country_name => 'Germany',
        city => 'Berlin', lat => 52.52, lon => 13.405, radius => 10, tz => 'Europe/Berlin',
        asn => 64500, as_org => 'Example Berlin IPv6',
    },
);

sub country_part {
    my ($p) = @_;
    my $country = { iso_code => $p->{country}, names => { en => $p->{country_name} } };
    return (
        continent          => $CONTINENT{ $p->{continent} },
        country            => $country,
        registered_country => $country,
    );
}

sub city_record {
    my ($p) = @_;
    return {
        country_part($p),
        city     => { names => { en => $p->{city} } },
        location => {
            latitude        => $p->{lat},
            longitude       => $p->{lon},
            accuracy_radius => $p->{radius},
            time_zone       => $p->{tz},
        },
    };
}

my %RECORD_FOR = (
    'GeoLite2-City'       => \&city_record,
    'GeoLite2-Country'    => sub { return { country_part( $_[0] ) } },
    'GeoLite2-ASN'        => sub {
        return {
            autonomous_system_number       => $_[0]{asn},
            autonomous_system_organization => $_[0]{as_org},
        };
    },
    'GeoIP2-Enterprise' => sub {
        my $record = city_record( $_[0] );
        $record->{traits} = {
            autonomous_system_number       => $_[0]{asn},
            autonomous_system_organization => $_[0]{as_org},
        };
        return $record;
    },
    'GeoIP2-Anonymous-IP' => sub { return { is_anonymous => 1, is_anonymous_vpn => 1 } },
);

sub write_db {
    my ( $file, $type, $ip_version, $places, $build_epoch ) = @_;
    $places      //= \@PLACES;
    $build_epoch //= $BUILD_EPOCH;
    my $tree = MaxMind::DB::Writer::Tree->new(
        ip_version               => $ip_version,
        record_size              => 24,
        database_type            => $type,
        languages                => ['en'],
        description              => { en => "stepup test data ($type): documentation ranges only" },
        map_key_type_callback    => sub { $TYPES{ $_[0] } // die "no type for key $_[0]\n" },
        alias_ipv6_to_ipv4       => $ip_version == 6 ? 1 : 0,
        # The documentation ranges are "reserved"; the writer drops reserved
        # networks unless told not to.
        remove_reserved_networks => 0,
        _build_epoch             => $build_epoch,
    );
    for my $place (@$places) {
        next if $ip_version == 4 && $place->{network} =~ /:/;
        $tree->insert_network( $place->{network}, $RECORD_FOR{$type}->($place) );
    }
    my $path = "$dir/$file";
    my $tmp  = "$path.tmp";
    open my $fh, '>:raw', $tmp or die "$0: cannot write $tmp: $!\n";
    $tree->write_tree($fh);
    close $fh or die "$0: cannot write $tmp: $!\n";
    chmod 0644, $tmp or die "$0: chmod $tmp: $!\n";
    rename $tmp, $path or die "$0: rename $tmp: $!\n";
}

write_db( 'city.mmdb',       'GeoLite2-City',       6 );
write_db( 'country.mmdb',    'GeoLite2-Country',    6 );
write_db( 'asn.mmdb',        'GeoLite2-ASN',        6 );
write_db( 'asn-ipv4.mmdb',   'GeoLite2-ASN',        4 );
write_db( 'enterprise.mmdb', 'GeoIP2-Enterprise',   6 );
write_db( 'anonymous.mmdb',  'GeoIP2-Anonymous-IP', 6 );

# See (2) above: 192.0.2.0/25 is in Berlin in the next edition.
my @MOVED = map {
    $_->{network} eq '192.0.2.0/25'
      ? {
        %$_,
        country => 'DE', country_name => 'Germany', city => 'Berlin',
        lat     => 52.52, lon => 13.405, radius => 10, tz => 'Europe/Berlin',
      }
      : $_
} @PLACES;
write_db( 'city-moved.mmdb', 'GeoLite2-City', 6, \@MOVED, 1_706_745_600 );
