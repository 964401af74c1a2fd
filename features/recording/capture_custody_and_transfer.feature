Feature: Recording capture, custody and transfer
  As a case worker of a national information bureau,
  I want to record each capture, each confirmation of custody and each transfer as sources report them,
  so that the register always says who holds the person, where, and when they were last known to be alive,
  as GC III Art. 122 asks of an information bureau.

  Background:
    Given the case worker has opened a case for the prisoner of war "Aram Testyan", a national of AM

  Scenario: A soldier is captured, held, then handed over to another party
    When the case worker records that AZ captured the person at "Hadrut" on 2020-11-09, according to AM
    Then the register answers 201
    And the case is at version 2
    And the person's status is "held"
    And the person is held by AZ at "Hadrut"
    And the person was last seen alive on 2020-11-09

    When the case worker records that AZ held the person at "Baku" on 2020-12-14, according to the ICRC
    Then the register answers 201
    And the person is held by AZ at "Baku"
    And the person was last seen alive on 2020-12-14

    When the case worker records that AZ handed the person over to RU at "Goris" on 2021-01-20, according to the ICRC
    Then the register answers 201
    And the case is at version 4
    And the person's status is "held"
    And the person is held by RU at "Goris"
    And the person was last seen alive on 2021-01-20

    When the case worker looks at the case
    Then the register answers 200
    And the case is at version 4
    And the person is held by RU at "Goris"
    And the case is not disputed

  Scenario: A move between places within the same party's custody
    Given the case worker has recorded that AZ captured the person at "Hadrut" on 2020-11-09, according to AM
    When the case worker records that AZ moved the person to "Baku" on 2020-11-20, according to the ICRC
    Then the register answers 201
    And the person is held by AZ at "Baku"
    And the person was last seen alive on 2020-11-20
