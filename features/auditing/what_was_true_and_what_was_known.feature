Feature: What was true on a day, and what the register knew at an instant
  As an auditor for a later commission of inquiry,
  I want to see a case as the world stood on a given day, and as the register knew it at a given instant,
  so that I can tell what happened apart from what the bureau knew when it acted.

  The capture is reported weeks after a later transfer was already recorded.

  Background:
    Given the case worker has opened a case for the prisoner of war "Aram Testyan", a national of AM
    And the case worker has recorded that AZ handed the person over to RU at "Goris" on 2021-03-01, according to the ICRC
    And the moment that was recorded is noted
    And the case worker has recorded that AZ captured the person at "Hadrut" on 2021-01-15, according to AM

  Scenario: Now, the late capture takes its place before the transfer
    When the auditor looks at the case
    Then the register answers 200
    And the case is at version 3
    And the person is held by RU at "Goris"
    And the person was last seen alive on 2021-03-01

  Scenario: As of a day between capture and transfer, with what is known now
    When the auditor asks for the case as of 2021-02-01
    Then the register answers 200
    And the person's status is "held"
    And the person is held by AZ at "Hadrut"
    And the person was last seen alive on 2021-01-15

  Scenario: As known before the capture was reported, only the transfer is known
    When the auditor asks for the case as known at the noted moment
    Then the register answers 200
    And the case is at version 2
    And the person is held by RU at "Goris"
    And the person was last seen alive on 2021-03-01

  Scenario: As of a day between capture and transfer, as known before the capture was reported
    When the auditor asks for the case as of 2021-02-01, as known at the noted moment
    Then the register answers 200
    And the case is at version 2
    And the person's status is "unknown"
    And nobody is known to hold the person
    And nothing is known of the person being seen alive

  Scenario: As of a day before anything happened to the person
    When the auditor asks for the case as of 2021-01-01
    Then the register answers 200
    And the person's status is "unknown"
    And nobody is known to hold the person
    And nothing is known of the person being seen alive

  Scenario: Before the case was opened, the register knew nothing of it
    When the auditor asks for the case as known at 2020-01-01T00:00:00Z
    Then the register answers 404 "not-found"
